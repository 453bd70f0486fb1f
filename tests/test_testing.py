"""The public contract kit, ``autophagy.testing``: every built-in model family, policy, metric
and generated dataset passes its check, the README's ``BoxModel`` too, and a plugin that breaks
a rule the loop relies on fails in one line naming that rule."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pytest
import torch

from autophagy.data import DATASETS, DatasetEntry, load_dataset
from autophagy.errors import AutophagyError, ContractError
from autophagy.metrics import METRICS, Metric
from autophagy.metrics.text import TEXT_METRICS
from autophagy.models import MODELS, build_model
from autophagy.policies import POLICIES, Policy, parameter
from autophagy.testing import check, check_dataset, check_metric, check_model, check_policy

torch.set_num_threads(1)  # tiny models: threads only add overhead

NEURAL = {"device": "cpu", "batch_size": 32}
POINT_OPTIONS = {
    "gaussian": {},
    "gmm": {"n_components": 2},
    "kde": {},
    "categorical": {"grid": 0.5},
    "linear_regression": {},
    "nsf": {"transforms": 1, "hidden_features": [8, 8], **NEURAL},
    "maf": {"transforms": 1, "hidden_features": [8, 8], **NEURAL},
    "cfm": {"hidden_features": [16, 16], "steps": 2, **NEURAL},
    "otcfm": {"hidden_features": [16, 16], "steps": 2, **NEURAL},
    "ddpm": {"hidden_features": [16, 16], "timesteps": 100, "sampler": "ddim", "steps": 3,
             **NEURAL},
    "edm": {"hidden_features": [16, 16], "steps": 2, **NEURAL},
}
TINY_UNET = {"network": "unet", "device": "cpu", "batch_size": 16,
             "network_options": {"block_out_channels": [8, 16], "layers_per_block": 1,
                                 "norm_num_groups": 4}}
IMAGE_OPTIONS = {
    "ddpm": {"timesteps": 100, "sampler": "ddim", "steps": 2, "clip": 1.0, **TINY_UNET},
    "edm": {"sigma_data": 0.5, "steps": 2, **TINY_UNET},
    "otcfm": {"steps": 2, **TINY_UNET},
    "gaussian": {},
    "kde": {},
}
NEEDS_A_PATH = {"file", "cifar10", "image_folder", "cifar20", "text"}
CLASSIFIER_METRICS = {"class_kl", "classes_covered", "annotator_accuracy", "label_fidelity"}
TEXT_METRIC_NAMES = {m.name for m in TEXT_METRICS}
"""Train the digits classifier (about 20 s on 2 cores): covered by the classifier tests."""


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", n_train=64, n_test=32, seed=0)


# --- every built-in passes -----------------------------------------------------------------
TEXT_OPTIONS = {
    "ngram": {"order": 2, "top_p": 0.9},
    "gpt": {"n_layer": 1, "n_head": 2, "n_embd": 16, "batch_size": 8, "device": "cpu"},
}


def test_every_registered_model_family_has_tiny_options_here():
    assert set(MODELS) == set(POINT_OPTIONS) | set(TEXT_OPTIONS) | {"conditional_ddpm"}


def test_the_class_conditional_family_passes_check_model_on_labelled_digits(digits):
    """Its data are images with their label plane (what the loop gives it)."""
    import dataclasses

    from autophagy.data.labelled import split_labels
    from autophagy.models.families.conditional import with_labels

    planed = dataclasses.replace(
        digits, train=with_labels(digits.train, split_labels(digits, "train")[0]),
        test=with_labels(digits.test, split_labels(digits, "test")[0]))
    options = {**IMAGE_OPTIONS["ddpm"], "n_classes": 10, "guidance": 1.0}
    passed = check_model("conditional_ddpm", planed, options=options, n=4, budget=32)
    assert {"state round-trip", "warm start after load"} <= set(passed)


@pytest.mark.parametrize("name", TEXT_OPTIONS)
def test_text_families_pass_check_model_on_zipf_blocks(name):
    if name == "gpt":
        pytest.importorskip("transformers")
    data = load_dataset("zipf", n_train=64, n_test=16, seed=0, vocab_size=50, block_len=8)
    passed = check_model(name, data, options=TEXT_OPTIONS[name], n=8, budget=64)
    assert {"state round-trip", "warm start after load", "sample dtype"} <= set(passed)


@pytest.mark.parametrize("name", POINT_OPTIONS)
def test_every_model_family_passes_check_model_on_points(name):
    passed = check_model(name, options=POINT_OPTIONS[name])
    assert {"fit returns self", "state round-trip", "warm start after load",
            "sample determinism", "temperature"} <= set(passed)


@pytest.mark.parametrize("name", IMAGE_OPTIONS)
def test_image_families_pass_check_model_on_8x8_digits(name, digits):
    assert "warm start after load" in check_model(name, digits, options=IMAGE_OPTIONS[name],
                                                  n=4, budget=32)


@pytest.mark.parametrize("name", list(POLICIES))
def test_every_policy_passes_check_policy(name):
    assert "state round-trip" in check_policy(name)


@pytest.mark.parametrize("name", ["mixed:0", "accumulate:0.5", "fresh_real:fraction=0.3"])
def test_policies_pass_with_other_parameters(name):
    assert "determinism" in check_policy(name)


def test_a_policy_passes_on_images(digits):
    assert "state round-trip" in check_policy("curated", digits)


def _metric_setting(name, digits):
    """(dataset, keyword arguments) under which metric ``name`` applies."""
    if name in ("mean_error", "cov_error"):
        return "gaussian", {}
    if name in ("reward_mean", "reward_var"):
        return None, {"policy": "curated"}
    if name in ("entropy", "max_prob"):
        data = load_dataset("moons", n_train=128, n_test=64)
        model = build_model("categorical", {"grid": 0.5}).fit(data.train, rng=None)
        return data, {"model": model}
    if name in ("test_error", "test_mse"):
        data = load_dataset("linear_regression", n_train=128, n_test=64)
        return data, {"model": build_model("linear_regression").fit(data.train)}
    if name in TEXT_METRIC_NAMES:  # token blocks and an n-gram fitted to them
        data = load_dataset("zipf", n_train=64, n_test=32, vocab_size=40, block_len=8)
        return data, {"model": build_model("ngram", {"order": 2}).fit(data.train)}
    # the tail metrics (issue 24): a dataset that knows its modes, a mixture, a finite support
    if name in ("modes_covered", "rare_mode_mass", "off_mode_share"):
        return "long_tail", {}
    if name == "min_weight":
        data = load_dataset("long_tail", n_train=128, n_test=64)
        gmm = build_model("gmm", {"n_components": 3}).fit(data.train, rng=np.random.default_rng(0))
        return data, {"model": gmm}
    if name == "support_size":
        data = load_dataset("moons", n_train=128, n_test=64)
        return data, {"model": build_model("categorical", {"grid": 0.5}).fit(data.train, rng=None)}
    if name == "acceptance_rate":
        return None, {"policy_state": {"acceptance_rate": 0.25}}
    if "labels" in METRICS[name].needs:  # downstream metrics: labels and groups as columns
        return load_dataset("minority_modes", n_train=200, n_test=200), {}
    if name.startswith("function_"):  # function space: a network family
        data = load_dataset("moons", n_train=128, n_test=64)
        flow = build_model("nsf", {"initial_budget": 256, "device": "cpu"})
        return data, {"model": flow.fit(data.train, rng=np.random.default_rng(0))}
    if METRICS[name].needs:  # feature-space metrics: on digits, pixel features (no training)
        return digits, {"features": "pixels"}
    return None, {}


@pytest.mark.parametrize("name", sorted(set(METRICS) - CLASSIFIER_METRICS))
def test_every_metric_passes_check_metric_where_it_applies(name, digits, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOPHAGY_CACHE", str(tmp_path))
    dataset, kwargs = _metric_setting(name, digits)
    passed = check_metric(name, dataset, **kwargs)
    assert passed[-3:] == ["leaves ctx.rng alone", "inputs untouched", "determinism"]


@pytest.mark.parametrize("name", sorted(set(DATASETS) - NEEDS_A_PATH))
def test_every_dataset_without_a_path_passes_check_dataset(name):
    assert check_dataset(name) == ["loads", "arrays", "kind and shape", "disjoint splits",
                                   "determinism"]


def test_a_dataset_read_from_a_file_passes_with_its_path(tmp_path):
    np.save(tmp_path / "points.npy", np.random.default_rng(0).standard_normal((200, 3)))
    assert "disjoint splits" in check_dataset("file", options={"path": str(tmp_path /
                                                                           "points.npy")})
    with pytest.raises(ContractError, match=r"^file: loads: raised InputError: data.path: "):
        check_dataset("file")


# --- the README's plugins ------------------------------------------------------------------
# Copied from README.md, "Extending autophagy" (one-liners and all).
@dataclass(frozen=True)
class KeepHalf(Policy):
    """A random half of the real data plus floor(lambda * n) synthetic samples."""
    ratio: float = parameter(1.0, key="lambda", tag="lam")   # sweepable: {lambda: [0.5, 1]}
    name: ClassVar[str] = "keep_half"
    def n_synthetic(self, n_real): return math.floor(self.ratio * n_real)
    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        kept = real[rng.permutation(len(real))[: len(real) // 2]]
        return np.concatenate([kept, synthetic]), state

class BoxModel:
    """Uniform on the data's bounding box (any object with these methods is a model)."""
    def __init__(self, margin: float = 0.0): self.margin = margin
    def fit(self, data, *, warm_start=False, budget=None, rng):
        self.low_, self.high_ = data.min(0) - self.margin, data.max(0) + self.margin
        return self
    def sample(self, n, *, rng, temperature=1.0): return rng.uniform(self.low_, self.high_, (n, len(self.low_)))  # noqa: E501
    def state_dict(self): return {"low": self.low_, "high": self.high_}
    def load_state_dict(self, s): self.low_, self.high_ = s["low"], s["high"]

SPREAD = Metric(name="spread", title="sample spread", lower_is_better=False,
                compute=lambda ctx: float(np.var(ctx.samples, axis=0).mean()),
                description="mean per-axis variance of the samples")
# End of the README's code.


def test_the_readme_plugins_pass_their_checks():
    assert "warm start after load" in check_model(BoxModel, options={"margin": 0.1})
    assert "state round-trip" in check_policy(KeepHalf, params={"lambda": 0.5})
    assert "determinism" in check_metric(SPREAD)


def test_check_detects_the_kind_of_a_module_target_and_of_a_registered_name():
    lines = check(f"{__name__}:BoxModel")
    assert lines[0] == f"model {__name__}:BoxModel: 17 rules passed"
    assert "  ok  state round-trip" in lines
    assert check(f"{__name__}:KeepHalf")[0].startswith("policy ")
    assert check(f"{__name__}:SPREAD")[0].startswith("metric ")
    assert check("mixed:0.5")[0].startswith("policy mixed:0.5: ")
    assert check("mean_error") == [
        "metric mean_error: does not apply on moons; name a dataset it applies to"]
    assert check("mean_error", dataset="gaussian")[0] == "metric mean_error: 8 rules passed"
    kinds = [line.split()[0] for line in check("gaussian") if not line.startswith(" ")]
    assert kinds == ["model", "dataset"]  # one name, two registries: both checked
    with pytest.raises(AutophagyError, match="'nope' is no registered model, policy"):
        check("nope")
    with pytest.raises(ContractError, match=r"^math:pi: kind: float is not a model \(fit, "
                                            r"sample\), Policy, Metric or DatasetEntry$"):
        check("math:pi")


# --- broken plugins fail in one line naming the rule ---------------------------------------
class LeakyModel:
    """Keeps its spread out of the checkpoint: a resumed run samples a different distribution."""

    def fit(self, data, *, warm_start=False, budget=None, rng):
        self.mean_, self.std_ = data.mean(0), data.std(0)
        return self

    def sample(self, n, *, rng, temperature=1.0):
        return self.mean_ + self.std_ * rng.standard_normal((n, len(self.mean_)))

    def state_dict(self):
        return {"mean": self.mean_}

    def load_state_dict(self, state):
        self.mean_, self.std_ = state["mean"], np.ones_like(state["mean"])


class NoSelf(BoxModel):
    def fit(self, data, **kwargs):
        super().fit(data, **kwargs)


class Transposed(BoxModel):
    def sample(self, n, *, rng, temperature=1.0):
        return super().sample(n, rng=rng).T


class GlobalRandom(BoxModel):
    def sample(self, n, *, rng, temperature=1.0):
        return np.random.uniform(self.low_, self.high_, (n, len(self.low_)))


class IntSamples(BoxModel):
    def sample(self, n, *, rng, temperature=1.0):
        return np.round(super().sample(n, rng=rng)).astype(np.int64)


class InPlace(BoxModel):
    def fit(self, data, **kwargs):
        data -= data.mean(0)  # standardises the loop's real data for every later generation
        return super().fit(data, **kwargs)


class ObjectState(BoxModel):
    def state_dict(self):
        return {**super().state_dict(), "rng": np.random.default_rng(0)}


class StepCounter(BoxModel):
    """A learning rate decaying with the fits done, whose counter is not checkpointed."""

    def fit(self, data, *, warm_start=False, budget=None, rng):
        if not (warm_start and hasattr(self, "low_")):
            self.fits_ = 0
            return super().fit(data, rng=rng)
        self.fits_ = getattr(self, "fits_", 0) + 1
        step = 0.1 / (1 + self.fits_)  # shrinks the box towards the data's mean
        self.low_ = self.low_ + step * (data.mean(0) - self.low_)
        self.high_ = self.high_ + step * (data.mean(0) - self.high_)
        return self


class NoTemperature(BoxModel):
    sampling_temperature = "sometimes"


@pytest.mark.parametrize(("model", "message"), [
    (LeakyModel, r"^LeakyModel: state round-trip: sample after load_state_dict differs from the "
                 r"original \(max \|diff\| [0-9.]+\); state_dict must hold everything sample "
                 r"uses$"),
    (NoSelf, r"^NoSelf: fit returns self: fit returned NoneType, not the model; end fit with "
             r"'return self'$"),
    (Transposed, r"^Transposed: sample shape: sample\(32\) gave shape \(2, 32\); the loop needs "
                 r"\(32, 2\)$"),
    (GlobalRandom, r"^GlobalRandom: sample determinism: two calls with the same rng seed differ "
                   r"\(max \|diff\| [0-9.]+\); draw only from the rng passed in"),
    (IntSamples, r"^IntSamples: sample dtype: sample gave dtype int64"),
    (InPlace, r"^InPlace: fit leaves data untouched: fit changed its input in place"),
    (ObjectState, r"^ObjectState: state is data: state_dict\(\) cannot be checkpointed: "
                  r"TypeError: .*rng"),
    (StepCounter, r"^StepCounter: warm start after load: a warm-started fit after "
                  r"load_state_dict continues differently"),
    (NoTemperature, r"^NoTemperature: temperature: sampling_temperature must be one of"),
])
def test_a_broken_model_fails_in_one_line_naming_the_rule(model, message):
    with pytest.raises(ContractError, match=message) as err:
        check_model(model)
    assert "\n" not in str(err.value)
    assert err.value.rule == message.split(": ")[1]


def test_a_model_checked_as_an_instance_is_left_unfitted():
    box = BoxModel(margin=0.5)
    assert "state round-trip" in check_model(box)
    assert not hasattr(box, "low_")


@dataclass(frozen=True)
class ShuffleInPlace(KeepHalf):
    name: ClassVar[str] = "shuffle_in_place"

    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        rng.shuffle(real)
        return np.concatenate([real, synthetic]), state


@dataclass(frozen=True)
class GeneratorInState(KeepHalf):
    name: ClassVar[str] = "generator_in_state"

    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        return real, {"rng": rng}


@dataclass(frozen=True)
class Remembers(KeepHalf):
    """Counts its generations on itself, not in its state: a resumed run starts counting anew."""

    memory: list = field(default_factory=list, compare=False)
    name: ClassVar[str] = "remembers"

    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        self.memory.append(len(synthetic))
        return real[len(self.memory):], state


@dataclass(frozen=True)
class GlobalShuffle(KeepHalf):
    name: ClassVar[str] = "global_shuffle"

    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        return real[np.random.permutation(len(real))], state


@dataclass(frozen=True)
class Negative(KeepHalf):
    name: ClassVar[str] = "negative"

    def n_synthetic(self, n_real):
        return -1.5


@pytest.mark.parametrize(("policy", "message"), [
    (ShuffleInPlace, r"^ShuffleInPlace: inputs untouched: next_training_set changed the real "
                     r"data in place"),
    (GeneratorInState, r"^GeneratorInState: state is data: generation 1's state cannot be "
                       r"checkpointed"),
    (Remembers, r"^Remembers: state round-trip: generation 2's training set differs when the "
                r"state went through a checkpoint \(shape \(126, 2\) vs \(127, 2\)\); keep what a "
                r"policy remembers in its state dict"),
    (GlobalShuffle, r"^GlobalShuffle: determinism: generation 1's training set differs under "
                    r"the same rng seed"),
    (Negative, r"^Negative: n_synthetic: n_synthetic\(128\) is -1.5"),
])
def test_a_broken_policy_fails_in_one_line_naming_the_rule(policy, message):
    with pytest.raises(ContractError, match=message):
        check_policy(policy)


def test_broken_metrics_fail_in_one_line_naming_the_rule():
    draws = Metric(name="draws", description="uses the loop's rng",
                   compute=lambda ctx: float(ctx.rng.standard_normal()))
    with pytest.raises(ContractError, match=r"^draws: leaves ctx.rng alone: compute advanced "
                                            r"ctx.rng; draw from metric_rng"):
        check_metric(draws)
    nan = Metric(name="nan", description="0 / 0", compute=lambda ctx: float("nan"))
    with pytest.raises(ContractError, match=r"^nan: finite float: compute returned nan on moons"):
        check_metric(nan)
    gpu = Metric(name="gpu", description="x", compute=lambda ctx: 0.0, needs={"gpu"})
    with pytest.raises(ContractError, match=r"^gpu: describes itself: needs \['gpu'\]"):
        check_metric(gpu)


def test_a_dataset_that_ignores_its_rng_fails_disjoint_splits():
    def same_points(n, rng):
        return np.random.default_rng(0).standard_normal((n, 2))

    entry = DatasetEntry("always the same draws", sampler=same_points)
    with pytest.raises(ContractError, match=r"disjoint splits: 32 of 32 test rows are also "
                                            r"training rows$"):
        check_dataset(entry)
    assert not any(name.startswith("_contract_check") for name in DATASETS)
