"""Image families: DDPM, EDM and OT-CFM with a tiny diffusers UNet on 8x8 digits (CPU, 1 thread).

Also the pretrained generation 0 (``init_checkpoint``: a state-dict file, a diffusers folder), the
device check at construction, and the full-scale presets refusing to start on this machine.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import autophagy
from autophagy.cli import app
from autophagy.data import load_dataset
from autophagy.models import build_model
from autophagy.models.nets.unet import UNet

torch.set_num_threads(1)  # tiny models: threads only add overhead (and contention)

TINY_UNET = {"block_out_channels": [8, 16], "layers_per_block": 1, "norm_num_groups": 4}
TRAIN = {"device": "cpu", "batch_size": 32, "lr": 3e-3, "network": "unet",
         "network_options": TINY_UNET}
FAMILIES = {
    "ddpm": {"timesteps": 100, "sampler": "ddim", "steps": 5, "clip": 1.0},
    "edm": {"sigma_data": 0.5, "steps": 3},
    "otcfm": {"steps": 3},
}
FULL_SCALE = ["cifar10-edm", "cifar10-ddpm", "cifar10-otcfm", "ffhq64-edm"]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", n_train=400, n_test=100, seed=0)


def tiny(name, **options):
    return build_model(name, {**FAMILIES[name], **TRAIN, **options})


def fixed_loss(model, x):
    with torch.no_grad():
        batch = model._to_model_space(x)
        return model._loss(model.eval_module, batch, torch.Generator().manual_seed(0)).item()


@pytest.mark.parametrize("name", FAMILIES)
def test_each_image_family_lowers_its_loss_on_digits(name, digits):
    x = digits.train[:128]
    model = tiny(name).fit(x, budget=0, rng=np.random.default_rng(0))
    before = fixed_loss(model, x)
    model.fit(x, warm_start=True, budget=32 * 25, rng=np.random.default_rng(1))
    assert model.last_train_.steps == 25
    assert fixed_loss(model, x) < 0.8 * before


@pytest.mark.parametrize("name", FAMILIES)
def test_image_samples_have_the_data_shape_and_are_deterministic_under_a_seed(name, digits):
    model = tiny(name, sample_batch_size=4).fit(digits.train[:64], budget=64,
                                                rng=np.random.default_rng(0))
    a = model.sample(6, rng=np.random.default_rng(3))
    b = model.sample(6, rng=np.random.default_rng(3))
    assert a.shape == (6, 1, 8, 8) and a.dtype == np.float32
    assert a.min() >= -1 and a.max() <= 1  # clamped to the data's range
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, model.sample(6, rng=np.random.default_rng(4)))
    assert model.sample(0, rng=np.random.default_rng(3)).shape == (0, 1, 8, 8)


def test_images_are_not_standardised(digits):
    model = tiny("ddpm").fit(digits.train[:64], budget=0, rng=np.random.default_rng(0))
    assert not model.shift_.any() and (model.scale_ == 1).all()
    np.testing.assert_array_equal(model._to_model_space(digits.train[:3]).numpy(),
                                  digits.train[:3])


def test_init_checkpoint_state_dict_file_loads_the_weights_exactly(digits, tmp_path):
    trained = tiny("edm").fit(digits.train[:64], budget=64, rng=np.random.default_rng(0))
    path = tmp_path / "net.pt"
    torch.save(trained.eval_module.state_dict(), path)
    model = tiny("edm", init_checkpoint=str(path))
    model.fit(digits.train[:64], rng=np.random.default_rng(5))  # no budget: 0 steps
    assert model.last_train_.steps == 0
    for name, value in trained.eval_module.state_dict().items():
        assert torch.equal(model.eval_module.state_dict()[name], value), name
    np.testing.assert_array_equal(model.sample(4, rng=np.random.default_rng(1)),
                                  trained.sample(4, rng=np.random.default_rng(1)))
    model.fit(digits.train[:64], budget=64, rng=np.random.default_rng(5))  # a given budget trains
    assert model.last_train_.steps == 2


def test_init_checkpoint_diffusers_folder_gives_architecture_and_weights(digits, tmp_path):
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 8),
                       layers_per_block=1, norm_num_groups=4,
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D"))
    unet.save_pretrained(tmp_path / "unet")
    model = tiny("ddpm", init_checkpoint=str(tmp_path / "unet"))
    model.fit(digits.train[:64], rng=np.random.default_rng(0))
    loaded = model.eval_module.unet
    assert loaded.config.block_out_channels == (8, 8) or list(loaded.config.block_out_channels) \
        == [8, 8]
    for name, value in unet.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    rgb = np.zeros((8, 3, 8, 8), dtype=np.float32)
    with pytest.raises(ValueError, match="init_checkpoint: the UNet .* takes 1 channels"):
        tiny("ddpm", init_checkpoint=str(tmp_path / "unet")).fit(rgb, rng=np.random.default_rng(0))


def test_missing_init_checkpoint_names_the_option():
    with pytest.raises(ValueError, match=r"^init_checkpoint: no such file"):
        tiny("ddpm", init_checkpoint="/nowhere/net.pt")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused_at_construction():
    with pytest.raises(ValueError, match=r"^device: 'cuda' .* not available"):
        tiny("edm", device="cuda")


def test_unet_rejects_more_levels_than_the_image_allows():
    with pytest.raises(ValueError, match="block_out_channels: 5 levels"):
        UNet((1, 8, 8), block_out_channels=(8,) * 5, norm_num_groups=4)
    with pytest.raises(ValueError, match="^network_options: unknown option"):
        tiny("ddpm", network_options={"channels": 8})


@pytest.mark.parametrize("preset", FULL_SCALE)
def test_full_scale_presets_stop_before_a_run_dir_naming_what_is_missing(preset, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--preset", preset, "--out", str(out)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "data.path" in lines[0]
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_full_scale_preset_with_data_refuses_without_a_gpu(tmp_path):
    out = tmp_path / "run"
    data = ["--set", "data.name=digits", "--set", "data.n_train=1500", "--set", "data.n_test=297",
            "--set", "data.options={}"]
    result = CliRunner().invoke(app, ["run", "--preset", "ffhq64-edm", *data, "--out", str(out)])
    assert result.exit_code == 2 and "model.options.device" in result.output
    assert not out.exists()


def test_run_loop_retrains_an_image_family_on_digits(digits):
    df = autophagy.run_loop(tiny("ddpm", initial_budget=64), digits, "mixed:0.5", generations=1,
                            seed=0, n_samples=50, budget=32, metrics=["energy", "sliced_w2"])
    energy = df[df.metric == "energy"].set_index("generation")["value"]
    assert list(energy.index) == [0, 1] and np.isfinite(energy).all()
