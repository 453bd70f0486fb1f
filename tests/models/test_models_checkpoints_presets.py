"""CPU rehearsals of the paper's full-scale presets: their code path, from a pretrained checkpoint.

Each test writes a tiny checkpoint in the published format of its family (an NVlabs/edm pickle,
a diffusers pipeline folder, a torchcfm training checkpoint) and a few hundred tiny images, then
runs ``autophagy run --preset <full-scale preset>`` with only the ``--set`` overrides the README
lists for a rehearsal: CPU, sizes, steps. The rest of each preset (family, network, sampler,
optimiser, policies, metrics) is what a GPU run uses.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_models_checkpoints import randomize, write_edm_pickle
from typer.testing import CliRunner

from autophagy.cli import app
from autophagy.metrics.fixed_point import STABILITY_METRICS
from autophagy.models.nets.openai_unet import OpenAIUNet
from autophagy.models.nets.songunet import SongUNet

torch.set_num_threads(1)
runner = CliRunner()

TINY_SONG = {"model_channels": 16, "channel_mult": [1, 2], "num_blocks": 1,
             "attn_resolutions": [8], "dropout": 0.13, "augment_dim": 9}
TINY_CFM = {"num_channels": 32, "num_res_blocks": 1, "channel_mult": [1, 2],
            "attention_resolutions": [16], "num_heads": 1, "num_head_channels": -1,
            "dropout": 0.1}
# The rehearsal's overrides (README, "CPU rehearsal of a full-scale preset")
REHEARSAL = ["--set", "model.options.device=cpu", "--set", "data.n_train=200",
             "--set", "data.n_test=50", "--set", "loop.generations=1",
             "--set", "loop.policies={mixed: {lambda: [0.5]}, fully_synthetic: {}}",
             "--set", "model.budget=64", "--set", "model.options.batch_size=32",
             "--set", "model.options.sample_batch_size=64", "--set", "eval.n_samples=60",
             "--set", "run.executor=inline", "--quiet"]
# FID on raw 32x32 pixels means 3072-dim covariances: the labelled CIFAR rehearsals use the
# dataset's small classifier (the preset's default features); unlabelled FFHQ uses pixels at 16x16.


def write_cifar(folder: Path, n_per_batch: int = 40, n_test: int = 50) -> Path:
    """A CIFAR-10 python folder of random 32x32 images: 5 x ``n_per_batch`` train, ``n_test``."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    for i, n in enumerate([n_per_batch] * 5 + [n_test]):
        name = f"data_batch_{i + 1}" if i < 5 else "test_batch"
        batch = {b"labels": [int(v) for v in rng.integers(0, 10, n)],
                 b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"filenames": [f"{j}.png".encode() for j in range(n)], b"batch_label": b"b"}
        with (folder / name).open("wb") as f:
            pickle.dump(batch, f, protocol=2)
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump({b"label_names": [b"c%d" % k for k in range(10)]}, f, protocol=2)
    return folder


def run_preset(preset: str, tmp_path: Path, *extra: str) -> pd.DataFrame:
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "--preset", preset, *REHEARSAL, *extra,
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = pd.read_parquet(out / "metrics.parquet")
    # + the distances to the fixed point every mixed run measures (function space for networks)
    assert set(metrics["metric"]) - set(STABILITY_METRICS) == {"fid", "precision", "recall"}
    assert "function_distance" in set(metrics["metric"])
    assert np.isfinite(metrics["value"]).all()
    return metrics


def test_cifar10_edm_rehearsal_from_an_edm_pickle(tmp_path, monkeypatch):
    torch.manual_seed(0)
    pkl = tmp_path / "edm-cifar10-32x32-uncond-vp.pkl"
    write_edm_pickle(pkl, randomize(SongUNet((3, 32, 32), **TINY_SONG)), (3, 32, 32),
                     monkeypatch, kwargs=TINY_SONG)
    metrics = run_preset("cifar10-edm", tmp_path,
                         "--set", f"data.path={write_cifar(tmp_path / 'cifar')}",
                         "--set", f"model.options.init_checkpoint={pkl}",
                         "--set", "model.options.network_options=null",
                         "--set", "model.options.steps=2")
    assert sorted(metrics["generation"].unique()) == [0, 1]


def test_ffhq64_edm_rehearsal_from_an_edm_pickle(tmp_path, monkeypatch):
    from PIL import Image

    rng = np.random.default_rng(0)
    faces = tmp_path / "ffhq"
    faces.mkdir()
    for i in range(250):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(
            faces / f"{i:05d}.png")
    torch.manual_seed(0)
    pkl = tmp_path / "edm-ffhq-64x64-uncond-vp.pkl"
    song = {**TINY_SONG, "attn_resolutions": [8]}
    write_edm_pickle(pkl, randomize(SongUNet((3, 16, 16), **song)), (3, 16, 16), monkeypatch,
                     kwargs=song)
    run_preset("ffhq64-edm", tmp_path, "--set", f"data.path={faces}",
               "--set", "eval.features=pixels",
               "--set", "data.options.resolution=16",
               "--set", f"model.options.init_checkpoint={pkl}",
               "--set", "model.options.network_options=null", "--set", "model.options.steps=2")


def test_cifar10_ddpm_rehearsal_from_a_diffusers_pipeline_folder(tmp_path):
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(8, 16),
                       layers_per_block=1, norm_num_groups=4,
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D"))
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=1000)).save_pretrained(
        tmp_path / "ddpm-cifar10-32")
    run_preset("cifar10-ddpm", tmp_path,
               "--set", f"data.path={write_cifar(tmp_path / 'cifar')}",
               "--set", f"model.options.init_checkpoint={tmp_path / 'ddpm-cifar10-32'}",
               "--set", "model.options.steps=3")


def test_cifar10_otcfm_rehearsal_from_a_torchcfm_checkpoint(tmp_path):
    torch.manual_seed(0)
    net = randomize(OpenAIUNet((3, 32, 32), **TINY_CFM))
    ckpt = tmp_path / "otcfm_cifar10_weights_step_400000.pt"
    torch.save({"net_model": net.state_dict(), "ema_model": net.state_dict(), "step": 400_000},
               ckpt)
    run_preset("cifar10-otcfm", tmp_path,
               "--set", f"data.path={write_cifar(tmp_path / 'cifar')}",
               "--set", f"model.options.init_checkpoint={ckpt}",
               "--set", f"model.options.network_options={TINY_CFM}",
               "--set", "model.options.solver=euler", "--set", "model.options.steps=2")


@pytest.mark.parametrize("preset", ["cifar10-edm", "ffhq64-edm", "cifar10-otcfm", "cifar10-ddpm"])
def test_full_scale_presets_name_a_gpu_and_wait_for_a_checkpoint(preset):
    from autophagy.config import load_config

    config = load_config(preset=preset)
    assert config.model.options["device"] == "cuda"
    assert config.model.options["init_checkpoint"] is None
