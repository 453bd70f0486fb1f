"""Feature extractors (raw pixels, a TorchScript Inception stand-in written by the test) and the
on-disk feature cache."""

from __future__ import annotations

import os

import numpy as np
import pytest

from autophagy.metrics import FeatureCache, FeatureExtractor, InceptionFeatures, PixelFeatures

torch = pytest.importorskip("torch")
F = torch.nn.functional
# torch.jit is deprecated, but TorchScript is the format the standard Inception file ships in.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


class ToyInception(torch.nn.Module):
    """Maps (n, 3, 299, 299) to (n, 2048) like the FID Inception: the 2x2 average pools of each
    channel, the global min and max, then zeros; 1008 'logits' without ``return_features``."""

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        if x.shape[1] != 3 or x.shape[2] != 299 or x.shape[3] != 299:
            raise RuntimeError("expected (n, 3, 299, 299)")
        n = x.shape[0]
        pooled = F.adaptive_avg_pool2d(x, 2).reshape(n, 12)
        lo = x.reshape(n, -1).amin(1, keepdim=True)
        hi = x.reshape(n, -1).amax(1, keepdim=True)
        feats = torch.cat([pooled, lo, hi, torch.zeros(n, 2048 - 14, dtype=x.dtype)], 1)
        if return_features:
            return feats
        return feats[:, :1008] - 1.0


class ToyNoFlag(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, 1).reshape(x.shape[0], 3).repeat(1, 2)


@pytest.fixture
def scripted(tmp_path):
    path = tmp_path / "inception-2015-12-05.pt"
    torch.jit.script(ToyInception()).save(str(path))
    return path


def expected_pooled(images: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(images).float()
    if t.shape[1] == 1:
        t = t.repeat(1, 3, 1, 1)
    t = ((t + 1) * 127.5).clamp(0, 255)
    t = F.interpolate(t, size=(299, 299), mode="bilinear", align_corners=False)
    return F.adaptive_avg_pool2d(t, 2).reshape(len(t), 12).double().numpy()


def test_inception_features_scale_resize_and_batch(scripted):
    ext = InceptionFeatures(scripted, batch_size=3)
    assert isinstance(ext, FeatureExtractor) and ext.name == "inception:inception-2015-12-05"
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, size=(7, 3, 32, 32)).astype(np.float32)
    images[0] = -1.0
    images[1] = 1.0
    feats = ext(images)
    assert feats.shape == (7, 2048) and feats.dtype == np.float64
    np.testing.assert_allclose(feats[:, :12], expected_pooled(images), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(feats[0, :14], 0.0, atol=1e-4)  # -1 -> 0
    np.testing.assert_allclose(feats[1, :14], 255.0, rtol=1e-6)  # +1 -> 255
    assert feats[:, 12].min() >= 0 and feats[:, 13].max() <= 255
    # Batching does not change anything; torch input is accepted.
    np.testing.assert_allclose(InceptionFeatures(scripted, batch_size=64)(images), feats)
    np.testing.assert_allclose(ext(torch.from_numpy(images)), feats)


def test_inception_features_repeat_grayscale_and_accept_299(scripted):
    ext = InceptionFeatures(scripted)
    rng = np.random.default_rng(1)
    gray = rng.uniform(-1, 1, size=(2, 1, 28, 28)).astype(np.float32)
    feats = ext(gray)
    pooled = feats[:, :12].reshape(2, 3, 4)
    np.testing.assert_allclose(pooled[:, 0], pooled[:, 1])
    np.testing.assert_allclose(pooled[:, 0], pooled[:, 2])
    np.testing.assert_allclose(feats[:, :12], expected_pooled(gray), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(ext(gray[:, 0]), feats)  # (n, H, W) is grayscale too
    full = rng.uniform(-1, 1, size=(2, 3, 299, 299)).astype(np.float32)
    np.testing.assert_allclose(ext(full)[:, :12], expected_pooled(full), rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError, match="expected images"):
        ext(np.zeros((2, 2, 8, 8), dtype=np.float32))


def test_inception_without_return_features_is_called_plainly(tmp_path):
    path = tmp_path / "traced.pt"
    torch.jit.trace(ToyNoFlag(), torch.zeros(1, 3, 299, 299)).save(str(path))
    feats = InceptionFeatures(path)(np.zeros((4, 3, 16, 16), dtype=np.float32))
    np.testing.assert_allclose(feats, 127.5, rtol=1e-6)
    assert feats.shape == (4, 6)


def test_inception_path_from_the_environment(scripted, monkeypatch):
    monkeypatch.setenv("AUTOPHAGY_INCEPTION", str(scripted))
    assert InceptionFeatures().path == scripted


def test_inception_errors_name_the_variable_and_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOPHAGY_INCEPTION", raising=False)
    with pytest.raises(ValueError, match="AUTOPHAGY_INCEPTION.*inception-2015-12-05.pt"):
        InceptionFeatures()
    missing = tmp_path / "nope.pt"
    with pytest.raises(ValueError, match="not found.*path argument.*inception-2015-12-05.pt"):
        InceptionFeatures(missing)
    monkeypatch.setenv("AUTOPHAGY_INCEPTION", str(missing))
    with pytest.raises(ValueError, match=r"not found.*\$AUTOPHAGY_INCEPTION"):
        InceptionFeatures()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a TorchScript archive")
    with pytest.raises(ValueError, match="not a TorchScript module.*inception-2015-12-05.pt"):
        InceptionFeatures(junk)


def test_pixel_features_flatten():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)
    feats = PixelFeatures()(x)
    assert PixelFeatures.name == "pixels" and feats.shape == (2, 12) and feats.dtype == np.float64
    np.testing.assert_array_equal(PixelFeatures()(torch.from_numpy(x)), feats)


def test_feature_cache_computes_once_and_writes_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOPHAGY_CACHE", str(tmp_path))
    cache = FeatureCache()
    assert cache.root == tmp_path
    calls = []

    def compute():
        calls.append(1)
        return np.arange(12.0).reshape(4, 3)

    first = cache.get_or_compute("mnist", "test", "inception:x/y", 4, compute)
    second = cache.get_or_compute("mnist", "test", "inception:x/y", 4, compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(first, second)
    path = cache.path("mnist", "test", "inception:x/y", 4)
    assert path.parent == tmp_path / "features"
    assert path.name == "mnist__test__inception_x_y__n4.npy"
    assert os.listdir(path.parent) == [path.name]  # no temporary file left behind
    assert cache.load("mnist", "train", "inception:x/y", 4) is None
    with pytest.raises(ValueError, match="expected n=5"):
        cache.get_or_compute("mnist", "test", "pixels", 5, compute)
    assert not (tmp_path / "features" / "mnist__test__pixels__n5.npy").exists()
