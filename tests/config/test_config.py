"""The config layer: presets, files, --set and --sweep, shorthands, and one-line errors that name
the field."""

from __future__ import annotations

import pytest
import yaml

from autophagy.config import (
    ConfigError,
    config_field,
    load_config,
    preset_dir,
    preset_names,
    validate,
)
from autophagy.errors import ArgumentError, AutophagyError, UnknownName


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_validates_and_round_trips_through_yaml(name):
    config = load_config(preset=name)
    again = validate(yaml.safe_load(config.to_yaml()))
    assert again == config
    assert config.description, f"preset {name} has no description for 'autophagy list'"


def test_set_overrides_a_nested_field_with_a_yaml_value():
    config = load_config(preset="toy-gmm", overrides=["loop.generations=3",
                                                      "loop.policies.mixed.lambda=[0,2]"])
    assert config.loop.generations == 3
    assert config.loop.policies["mixed"]["lambda"] == [0, 2]


def test_a_file_is_merged_over_its_preset(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("loop:\n  generations: 4\nseed: [1, 2]\n")
    config = load_config(path, preset="toy-gmm")
    assert config.loop.generations == 4 and config.seed == [1, 2]
    assert config.model.name == load_config(preset="toy-gmm").model.name


def test_lambda_shorthand_sets_every_policy_that_has_one():
    config = validate({"loop": {"policy": ["mixed", "accumulate", "fully_synthetic"],
                                "lambda": [0.5, 1]}})
    assert config.loop.policies == {"mixed": {"lambda": [0.5, 1]},
                                    "accumulate": {"lambda": [0.5, 1]},
                                    "fully_synthetic": {}}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"loop": {"generations": -1}}, "loop.generations"),
        ({"loop": {"generations": "many"}}, "loop.generations"),
        ({"loop": {"generationz": 3}}, "loop.generationz"),
        ({"loop": {"policies": {"mixd": {}}}}, "loop.policies"),
        ({"loop": {"policies": {"mixed": {"lambda": [-1]}}}}, "loop.policies.mixed.lambda"),
        ({"run": {"executor": "slurm"}}, "run.executor"),
        ({"sweep": {"seed": [1, 2]}}, "sweep.seed"),
        ({"sweep": {"data.n_train": []}}, "sweep.data.n_train"),
    ],
)
def test_a_bad_field_fails_in_one_line_naming_it(data, field):
    with pytest.raises(ConfigError) as err:
        validate(data)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{field}:"), message
    assert isinstance(err.value, AutophagyError)


def test_an_unknown_policy_suggests_the_close_name():
    with pytest.raises(ConfigError, match="did you mean 'mixed'"):
        validate({"loop": {"policies": {"mixd": {}}}})


def test_an_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="--preset: unknown preset 'toyflow'.*toy-flow"):
        load_config(preset="toyflow")


def test_a_sweep_gives_each_value_its_own_valid_config():
    config = load_config(preset="toy-gmm", sweeps=["data.n_train=[100,250]"])
    assert config.sweep == {"data.n_train": [100, 250]}
    one = config.with_overrides({"data.n_train": 250})
    assert one.data.n_train == 250 and one.sweep == {}
    with pytest.raises(ConfigError, match=r"sweep\.data\.n_train"):
        load_config(preset="toy-gmm", sweeps=["data.n_train=[100,-5]"])


def test_config_field_names_library_errors_by_the_field_they_came_from():
    with pytest.raises(ConfigError, match=r"^model\.options\.device: no such device$"):
        with config_field("model"):
            raise ArgumentError("device", "no such device")
    with pytest.raises(ConfigError, match=r"^data\.name: unknown dataset"):
        with config_field("data"):
            raise UnknownName("unknown dataset 'x'")
    with pytest.raises(ConfigError, match=r"^eval: bad value$"):
        with config_field("eval"):
            raise ValueError("bad value")


def test_presets_live_in_the_package():
    assert (preset_dir() / "toy-flow.yaml").is_file()
    assert load_config(preset="toy-flow") == validate(
        yaml.safe_load((preset_dir() / "toy-flow.yaml").read_text()))
