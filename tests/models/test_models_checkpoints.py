"""Pretrained generation 0 in the published formats, loaded through ``model.init_checkpoint``.

The tests build small networks of each architecture and save them as the authors publish them:
an NVlabs/edm persistence pickle (``{'ema': EDMPrecond, 'loss_fn', 'augment_pipe',
'dataset_kwargs'}``, every module a ``torch_utils.persistence`` record carrying its class source),
a torchcfm training checkpoint (``{'net_model', 'ema_model', 'optim', 'sched', 'step'}``) and a
diffusers pipeline folder written by diffusers itself; then they compare the loaded network's
outputs on fixed inputs. A pickle that asks for anything outside the allow-list is refused in one
line, and its code provably does not run.
"""

from __future__ import annotations

import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from autophagy.models import build_model
from autophagy.models.families.diffusion import edm_denoise
from autophagy.models.nets.edm_pickle import ALLOWED, CheckpointRefused, read_edm_pickle
from autophagy.models.nets.openai_unet import OpenAIUNet
from autophagy.models.nets.songunet import (
    Block,
    Conv2d,
    FourierEmbedding,
    GroupNorm,
    Linear,
    PositionalEmbedding,
    SongUNet,
)

torch.set_num_threads(1)

SONG = {"model_channels": 16, "channel_mult": [1, 2], "num_blocks": 1, "attn_resolutions": [4],
        "dropout": 0.13, "augment_dim": 9, "embedding_type": "positional",
        "channel_mult_noise": 1, "encoder_type": "standard", "decoder_type": "standard",
        "resample_filter": [1, 1]}
EDM_NAMES = {SongUNet: "SongUNet", Block: "UNetBlock", Conv2d: "Conv2d", Linear: "Linear",
             GroupNorm: "GroupNorm", PositionalEmbedding: "PositionalEmbedding",
             FourierEmbedding: "FourierEmbedding"}


def randomize(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Perturb every parameter (zero-initialised output layers would hide any mismatch)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return net.eval()


class Precond(torch.nn.Module):
    """Stands for EDM's ``EDMPrecond``: its attributes and the network as ``model``."""

    def __init__(self, model: torch.nn.Module, resolution: int, channels: int):
        super().__init__()
        self.img_resolution, self.img_channels, self.label_dim = resolution, channels, 0
        self.use_fp16, self.sigma_min, self.sigma_max, self.sigma_data = False, 0, float("inf"), 0.5
        self.model = model


class Loss:
    """Stands for EDM's ``EDMLoss``, a persistent object that is not a module."""

    P_mean, P_std, sigma_data = -1.2, 1.2, 0.5


def write_edm_pickle(path: Path, net: torch.nn.Module, shape, monkeypatch, *, kwargs=SONG,
                     module_src: str = "", sigma_data: float = 0.5, precond="EDMPrecond"):
    """Pickle ``net`` as NVlabs/edm's training loop does (``pickle.dump`` of the snapshot dict),
    every module a ``torch_utils.persistence`` record. Returns the list the reconstruct function
    appends to if anything ever calls it."""
    calls: list = []
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # what unpickling with EDM's code would call
        calls.append(meta["class_name"])

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", persistence)
    channels, resolution = shape[0], shape[1]
    top = Precond(net, resolution, channels)
    top.sigma_data = sigma_data
    init = {Precond: {"img_resolution": resolution, "img_channels": channels, "label_dim": 0,
                      "use_fp16": False, "sigma_data": sigma_data, "model_type": "SongUNet",
                      **kwargs}}

    class EDMPickler(pickle.Pickler):
        def reducer_override(self, obj):
            name = {**EDM_NAMES, Precond: precond, Loss: "EDMLoss"}.get(type(obj))
            if name is None:
                return NotImplemented
            state = dict(vars(obj)) if not isinstance(obj, Loss) else dict(vars(Loss))
            state = {k: v for k, v in state.items() if not k.startswith("__")}
            # EDM keeps numpy scalars (skip_scale = np.sqrt(0.5)) and its init arguments
            state.update(_init_args=(), _init_kwargs=init.get(type(obj), {}),
                         skip_scale=np.sqrt(0.5))
            meta = {"type": "class", "version": 6, "module_src": module_src,
                    "class_name": name, "state": state}
            return _reconstruct_persistent_obj, (meta,)

    data = {"ema": top, "loss_fn": Loss(), "augment_pipe": None,
            "dataset_kwargs": {"class_name": "training.dataset.ImageFolderDataset",
                               "path": "cifar10-32x32.zip", "use_labels": False,
                               "xflip": False, "cache": True, "resolution": resolution}}
    with path.open("wb") as f:
        EDMPickler(f, protocol=4).dump(data)
    monkeypatch.delitem(sys.modules, "torch_utils.persistence")
    monkeypatch.delitem(sys.modules, "torch_utils")
    return calls


def edm(**options):
    return build_model("edm", {"network": "songunet", "sigma_data": 0.5, "steps": 3,
                               "device": "cpu", "batch_size": 8, **options})


@pytest.fixture()
def images():
    return np.random.default_rng(0).uniform(-1, 1, (16, 3, 8, 8)).astype(np.float32)


def test_edm_pickle_loads_the_ema_network_and_gives_its_outputs(images, tmp_path, monkeypatch):
    torch.manual_seed(0)
    net = randomize(SongUNet((3, 8, 8), **SONG))
    marker = tmp_path / "ran.txt"
    calls = write_edm_pickle(tmp_path / "edm.pkl", net, (3, 8, 8), monkeypatch,
                             module_src=f"open({str(marker)!r}, 'w').write('ran')")
    model = edm(init_checkpoint=str(tmp_path / "edm.pkl"))
    model.fit(images, rng=np.random.default_rng(0))  # from the checkpoint: 0 steps
    assert model.last_train_.steps == 0
    loaded = model.eval_module.eval()
    assert isinstance(loaded, SongUNet)
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    sigma = torch.tensor([0.002, 0.5, 5.0, 80.0])
    with torch.no_grad():
        np.testing.assert_array_equal(edm_denoise(loaded, x, sigma, 0.5).numpy(),
                                      edm_denoise(net, x, sigma, 0.5).numpy())
    assert model.sample(3, rng=np.random.default_rng(2)).shape == (3, 3, 8, 8)
    # neither the reconstruct function nor the pickled class source ever ran
    assert calls == [] and not marker.exists()
    assert "torch_utils" not in sys.modules


def test_edm_pickle_records_keep_class_names_state_and_arguments(tmp_path, monkeypatch):
    torch.manual_seed(0)
    write_edm_pickle(tmp_path / "edm.pkl", SongUNet((3, 8, 8), **SONG), (3, 8, 8), monkeypatch)
    data = read_edm_pickle(tmp_path / "edm.pkl")
    assert sorted(data) == ["augment_pipe", "dataset_kwargs", "ema", "loss_fn"]
    assert data["ema"].class_name == "EDMPrecond" and data["loss_fn"].class_name == "EDMLoss"
    assert data["ema"].init_kwargs["model_channels"] == 16
    assert data["ema"].state["skip_scale"] == pytest.approx(np.sqrt(0.5))
    assert data["ema"].state["_modules"]["model"].class_name == "SongUNet"


def test_a_pickle_asking_for_other_code_is_refused_in_one_line_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"ema": Evil()}))
    with pytest.raises(CheckpointRefused) as err:
        edm(init_checkpoint=str(path)).fit(np.zeros((4, 3, 8, 8), np.float32),
                                           rng=np.random.default_rng(0))
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert message.startswith("init_checkpoint: refused") and ("posix.system" in message
                                                               or "os.system" in message)
    assert not marker.exists()
    # builtins that would run code are not on the list either
    for name in ("eval", "exec", "getattr", "__import__"):
        assert ("builtins", name) not in ALLOWED


@pytest.mark.parametrize("case, match", [
    ("shape", r"^init_checkpoint: .* is a network for 3x8x8 images, the data are 3x16x16$"),
    ("sigma_data", r"^sigma_data: .* was trained with sigma_data=0.5, the model has 1.0$"),
    ("network", r"^network: .* holds EDM's SongUNet; set network: songunet"),
    ("options", r"^network_options: model_channels=32 disagrees with .*model_channels=16$"),
    ("precond", r"^init_checkpoint: .* holds a VPPrecond; only EDMPrecond"),
    ("truncated", r"^init_checkpoint: .* is not a readable NVlabs/edm pickle"),
    ("family", r"^init_checkpoint: .* is an NVlabs/edm pickle; only model edm"),
])
def test_edm_pickle_mismatches_end_in_one_line(case, match, tmp_path, monkeypatch):
    torch.manual_seed(0)
    path = tmp_path / "edm.pkl"
    write_edm_pickle(path, SongUNet((3, 8, 8), **SONG), (3, 8, 8), monkeypatch,
                     precond="VPPrecond" if case == "precond" else "EDMPrecond")
    x = np.zeros((4, 3, 8, 8), np.float32)
    options = {"init_checkpoint": str(path)}
    if case == "shape":
        x = np.zeros((4, 3, 16, 16), np.float32)
    if case == "sigma_data":
        options["sigma_data"] = 1.0
    if case == "network":
        options.update(network="unet", network_options={"block_out_channels": [8, 16],
                                                        "norm_num_groups": 4})
    if case == "options":
        options["network_options"] = {"model_channels": 32}
    if case == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    model = edm(**options)
    if case == "family":
        model = build_model("otcfm", {"network": "openai_unet", "device": "cpu",
                                      "init_checkpoint": str(path)})
    with pytest.raises(ValueError, match=match) as err:
        model.fit(x, rng=np.random.default_rng(0))
    assert "\n" not in str(err.value)


def test_songunet_options_build_from_the_config_and_train(images):
    model = edm(network_options={k: v for k, v in SONG.items() if k != "augment_dim"})
    model.fit(images, budget=16, rng=np.random.default_rng(0))
    assert model.last_train_.steps == 2
    assert np.isfinite(model.sample(2, rng=np.random.default_rng(1))).all()


def test_ncsnpp_variant_has_the_fourier_and_residual_parts():
    net = SongUNet((3, 8, 8), model_channels=16, channel_mult=(1, 2), num_blocks=1,
                   embedding_type="fourier", channel_mult_noise=2, encoder_type="residual",
                   resample_filter=(1, 3, 3, 1))
    keys = net.state_dict()
    assert "map_noise.freqs" in keys and "enc.4x4_aux_residual.weight" in keys
    assert keys["enc.4x4_down.conv0.resample_filter"].shape == (1, 1, 4, 4)
    assert net(torch.randn(2, 3, 8, 8), torch.zeros(2)).shape == (2, 3, 8, 8)


# ---------------------------------------------------------------------------------- OT-CFM
CFM = {"num_channels": 32, "num_res_blocks": 1, "channel_mult": [1, 2],
       "attention_resolutions": [4], "num_heads": 2, "num_head_channels": -1, "dropout": 0.1}
# Keys and shapes of torchcfm 1.0.7's UNetModelWrapper(dim=(3, 8, 8), num_channels=32,
# num_res_blocks=1, channel_mult=[1, 2], num_heads=2, num_head_channels=-1,
# attention_resolutions="4"), read off the real module once (128 tensors).
TORCHCFM_KEYS = {
    "time_embed.2.weight": (128, 128),
    "input_blocks.2.0.op.weight": (32, 32, 3, 3),
    "input_blocks.3.1.qkv.weight": (192, 64, 1),
    "middle_block.1.proj_out.weight": (64, 64, 1),
    "output_blocks.0.0.skip_connection.weight": (64, 128, 1, 1),
    "output_blocks.1.2.conv.weight": (64, 64, 3, 3),
    "output_blocks.2.0.out_layers.3.weight": (32, 32, 3, 3),
    "out.2.weight": (3, 32, 3, 3),
}


def otcfm(**options):
    return build_model("otcfm", {"network": "openai_unet", "network_options": CFM,
                                 "device": "cpu", "steps": 2, "batch_size": 8, **options})


def test_openai_unet_keys_are_torchcfm_keys():
    keys = OpenAIUNet((3, 8, 8), **CFM).state_dict()
    assert len(keys) == 128
    for name, shape in TORCHCFM_KEYS.items():
        assert tuple(keys[name].shape) == shape, name


def test_torchcfm_checkpoint_loads_its_ema_model(images, tmp_path):
    torch.manual_seed(0)
    ema = randomize(OpenAIUNet((3, 8, 8), **CFM), 1)
    raw = randomize(OpenAIUNet((3, 8, 8), **CFM), 2)
    optim = torch.optim.Adam(raw.parameters(), lr=2e-4)
    torch.save({"net_model": raw.state_dict(), "ema_model": ema.state_dict(),
                "optim": optim.state_dict(), "sched": {"base_lrs": [2e-4]}, "step": 400_000},
               tmp_path / "otcfm_cifar10_weights_step_400000.pt")
    model = otcfm(init_checkpoint=str(tmp_path / "otcfm_cifar10_weights_step_400000.pt"))
    model.fit(images, rng=np.random.default_rng(0))
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    t = torch.tensor([0.0, 0.4, 1.0])
    with torch.no_grad():
        np.testing.assert_array_equal(model.eval_module.eval()(x, t).numpy(), ema(x, t).numpy())


def test_state_dict_with_dataparallel_prefix_loads_and_wrong_shapes_say_which(images, tmp_path):
    net = randomize(OpenAIUNet((3, 8, 8), **CFM))
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, tmp_path / "dp.pt")
    model = otcfm(init_checkpoint=str(tmp_path / "dp.pt")).fit(images, rng=np.random.default_rng(0))
    key = "out.2.weight"
    assert torch.equal(model.eval_module.state_dict()[key], net.state_dict()[key])
    wide = OpenAIUNet((3, 8, 8), **{**CFM, "num_channels": 64}).state_dict()
    torch.save(wide, tmp_path / "wide.pt")
    with pytest.raises(ValueError, match=r"^init_checkpoint: .*wide.pt' does not fit the "
                       r"network: \d+ tensors of another shape \(e.g. time_embed.0.weight"):
        otcfm(init_checkpoint=str(tmp_path / "wide.pt")).fit(images, rng=np.random.default_rng(0))
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"^init_checkpoint: .*junk.pt' is not a state dict"):
        otcfm(init_checkpoint=str(tmp_path / "junk.pt")).fit(images, rng=np.random.default_rng(0))


# ------------------------------------------------------------------------------------ DDPM
def test_diffusers_pipeline_folder_written_by_diffusers_loads(images, tmp_path):
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, block_out_channels=(8, 16),
                       layers_per_block=1, norm_num_groups=4,
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D")).eval()
    # google/ddpm-cifar10-32's layout: model_index.json, unet/, scheduler/
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=1000)).save_pretrained(
        tmp_path / "ddpm")
    assert (tmp_path / "ddpm" / "model_index.json").is_file()
    model = build_model("ddpm", {"network": "unet", "device": "cpu", "sampler": "ddim",
                                 "steps": 2, "init_checkpoint": str(tmp_path / "ddpm")})
    model.fit(images, rng=np.random.default_rng(0))
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # our DDPM feeds c = t / T; the UNet sees the step index t
        ours = model.eval_module.eval()(x, torch.tensor([10, 999]) / 1000)
        theirs = unet(x, torch.tensor([10.0, 999.0])).sample
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    other = build_model("ddpm", {"network": "unet", "device": "cpu", "timesteps": 500,
                                 "init_checkpoint": str(tmp_path / "ddpm")})
    with pytest.raises(ValueError, match=r"^init_checkpoint: .* was trained with 1000 steps of a "
                                         r"linear schedule"):
        other.fit(images, rng=np.random.default_rng(0))
