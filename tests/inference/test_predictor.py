"""Predictor: ensemble and mirroring against direct averaging, sliding windows, back-mapping onto CT grids."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from hecktorseg.config import to_dict
from hecktorseg.errors import ConfigError
from hecktorseg.evaluation import dice
from hecktorseg.inference import (
    MIRROR_AXES,
    Predictor,
    gaussian_importance_map,
    keep_largest_component,
    sliding_window_predict,
    window_starts,
)
from hecktorseg.io import Geometry
from hecktorseg.models import build_model, save_checkpoint
from hecktorseg.preprocessing import PreprocessConfig


def _tiny(seed: int, n_classes: int = 1) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("senorm_unet", n_filters=4, n_classes=n_classes).eval()


def _input(seed: int = 0, shape: tuple[int, int, int] = (32, 32, 32)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(2, *shape)).astype(np.float32)


def _probs(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        logits = model(x)
    return torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, dim=1)


def test_mirror_axes_are_the_8_subsets() -> None:
    assert len(MIRROR_AXES) == 8 and len(set(MIRROR_AXES)) == 8
    assert set(MIRROR_AXES) == {c for r in range(4) for c in itertools.combinations((2, 3, 4), r)}
    assert Predictor([_tiny(0), _tiny(1)], device="cpu", backend="torch", tta=True).n_members == 16


def test_ensemble_is_the_mean_of_member_probabilities() -> None:
    models = [_tiny(1), _tiny(2)]
    x = _input()
    predictor = Predictor(models, device="cpu", backend="torch", precision="fp32")
    got = predictor.predict_array(x)
    t = torch.from_numpy(x)[None]
    expected = torch.stack([_probs(m, t)[0] for m in models]).mean(0).numpy()
    assert got.shape == (1, 32, 32, 32) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_tta_and_variance_match_direct_averaging() -> None:
    models = [_tiny(3)]  # the ensemble mean is checked above; here the 8 mirrorings and the variance
    x = _input(1, shape=(16, 16, 16))
    predictor = Predictor(models, device="cpu", backend="torch", precision="fp32", tta=True)
    mean, var = predictor.predict_array(x, return_variance=True)
    t = torch.from_numpy(x)[None]
    members = []
    for m in models:
        for dims in MIRROR_AXES:
            xin = torch.flip(t, dims) if dims else t
            p = _probs(m, xin)
            members.append((torch.flip(p, dims) if dims else p)[0].numpy())
    stack = np.stack(members)
    assert predictor.n_members == 8
    np.testing.assert_allclose(mean, stack.mean(0), atol=2e-5)
    np.testing.assert_allclose(var, stack.var(0), atol=2e-5)


def test_multiclass_probabilities_sum_to_one() -> None:
    predictor = Predictor([_tiny(5, n_classes=3)], device="cpu", backend="torch", precision="fp32")
    out = predictor.predict_array(_input(2, shape=(16, 16, 16)))
    assert out.shape == (3, 16, 16, 16)
    np.testing.assert_allclose(out.sum(0), 1.0, atol=1e-5)


def test_sliding_window_equals_direct_for_a_pointwise_model(toys: SimpleNamespace) -> None:
    torch.manual_seed(0)
    model = toys.Pointwise(n_classes=2)
    x = _input(3, shape=(40, 8, 27))  # larger than the window along z and x, smaller along y
    predictor = Predictor(
        [model], device="cpu", backend="torch", precision="fp32", window_size=(16, 16, 16), overlap=0.25
    )
    got = predictor.predict_array(x)
    expected = _probs(model, torch.from_numpy(x)[None])[0].numpy()
    assert got.shape == expected.shape == (2, 40, 8, 27)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_sliding_window_blends_with_weights() -> None:
    # a "model" returning a constant per window: the blend stays a weighted mean between the constants
    calls: list[tuple[int, ...]] = []

    def predict(patch: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(patch.shape))
        return torch.full((1, 1, *patch.shape[2:]), float(len(calls)))

    out = sliding_window_predict(predict, torch.zeros(1, 2, 8, 8, 24), (8, 8, 8), overlap=0.5)
    assert out.shape == (1, 1, 8, 8, 24)
    assert len(calls) == len(window_starts(24, 8, 0.5)) == 5
    assert float(out.min()) >= 1.0 and float(out.max()) <= 5.0
    assert torch.allclose(out[..., :2], torch.ones(1)) and torch.allclose(
        out[..., -2:], torch.full((1,), 5.0)
    )
    g = gaussian_importance_map((8, 8, 8))
    assert float(g.max()) == pytest.approx(1.0) and float(g.min()) > 0


def test_window_starts_cover_the_axis() -> None:
    for length, window, overlap in [
        (100, 32, 0.5),
        (33, 32, 0.5),
        (32, 32, 0.5),
        (10, 32, 0.5),
        (97, 16, 0.0),
    ]:
        starts = window_starts(length, window, overlap)
        covered = np.zeros(length, bool)
        for s in starts:
            covered[s : s + window] = True
        assert covered.all() and starts[0] == 0
        assert starts[-1] == max(length - window, 0)


def test_keep_largest_component_per_label() -> None:
    mask = np.zeros((10, 10, 10), np.uint8)
    mask[0:2, 0:2, 0:2] = 1
    mask[5:9, 5:9, 5:9] = 1
    mask[0:1, 8:10, 8:10] = 2
    mask[3:4, 0:3, 7:10] = 2
    out = keep_largest_component(mask)
    assert out[5:9, 5:9, 5:9].all() and out[0:2, 0:2, 0:2].sum() == 0
    assert (out == 2).sum() == 9


def test_bad_settings_are_clear_errors() -> None:
    with pytest.raises(ConfigError):
        Predictor([], device="cpu")
    with pytest.raises(ConfigError, match="threshold"):
        Predictor([_tiny(0)], device="cpu", threshold=1.5)


@pytest.mark.parametrize(
    ("spacing", "shift", "angle"),
    [
        ((0.98, 0.98, 3.27), (0.0, 0.0, 0.0), 0.0),
        ((1.37, 1.37, 2.0), (3.3, -2.1, 1.7), 0.0),
        ((1.2, 1.1, 2.5), (0.0, 0.0, 0.0), 25.0),
    ],
)
def test_prediction_lands_on_the_ct_grid(
    toys: SimpleNamespace, tmp_path: Path, spacing: tuple[float, ...], shift: tuple[float, ...], angle: float
) -> None:
    geometry = toys.ct_geometry(spacing, shift, toys.rotation_z(angle) if angle else None)
    case = toys.write_case(tmp_path, "CHGJ007", geometry)
    predictor = Predictor(
        [toys.CTThreshold()],
        preprocess=toys.SMALL_CONFIG,
        device="cpu",
        backend="torch",
        precision="fp32",
    )
    pred = predictor.predict_case(case, with_probabilities=True, with_uncertainty=True)
    ct = sitk.ReadImage(str(case.ct_path))
    for image in (pred.mask, pred.probabilities, pred.uncertainty):
        assert image.GetSize() == ct.GetSize()
        np.testing.assert_allclose(image.GetSpacing(), ct.GetSpacing(), atol=1e-6)
        np.testing.assert_allclose(image.GetOrigin(), ct.GetOrigin(), atol=1e-4)
        np.testing.assert_allclose(image.GetDirection(), ct.GetDirection(), atol=1e-6)
    assert pred.mask.GetPixelID() == sitk.sitkUInt8
    assert pred.box_source == "table"
    # the toy model segments HU > 0: after mapping back it must match the sphere on the CT grid
    truth = sitk.GetArrayFromImage(ct) > 0
    mask = sitk.GetArrayFromImage(pred.mask)
    assert set(np.unique(mask)) <= {0, 1}
    assert dice(mask, truth) > 0.9
    assert float(sitk.GetArrayFromImage(pred.uncertainty).max()) == 0.0  # one model, no TTA


def test_multiclass_prediction_is_argmax_on_the_ct_grid(toys: SimpleNamespace, tmp_path: Path) -> None:
    case = toys.write_case(tmp_path, "CHUM-001", toys.ct_geometry((1.0, 1.0, 2.0)))
    cfg = toys.SMALL_CONFIG
    binary = Predictor([toys.CTThreshold(1)], preprocess=cfg, device="cpu", backend="torch", precision="fp32")
    multi = Predictor([toys.CTThreshold(3)], preprocess=cfg, device="cpu", backend="torch", precision="fp32")
    a = sitk.GetArrayFromImage(binary.predict_case(case).mask)
    pm = multi.predict_case(case, with_probabilities=True)
    b = sitk.GetArrayFromImage(pm.mask)
    assert pm.probabilities is not None and pm.probabilities.GetNumberOfComponentsPerPixel() == 3
    assert dice(a, b) > 0.97 and set(np.unique(b)) <= {0, 1}


def test_from_checkpoints_reads_the_preprocessing(tmp_path: Path) -> None:
    cfg = PreprocessConfig(spacing=(2.0, 2.0, 2.0), size=(32, 32, 32), box_source="label")
    paths = []
    for seed in (1, 2):
        path = tmp_path / f"m{seed}.pt"
        save_checkpoint(path, _tiny(seed), metadata={"preprocess": to_dict(cfg)})
        paths.append(path)
    predictor = Predictor.from_checkpoints(paths, device="cpu", backend="torch", precision="fp32")
    assert predictor.preprocess.size == (32, 32, 32)
    assert predictor.preprocess.box_source == "auto"  # label boxes are for training only
    assert predictor.window_size == (32, 32, 32)
    x = _input(4, shape=(16, 16, 16))
    expected = np.mean([_probs(_tiny(s), torch.from_numpy(x)[None])[0].numpy() for s in (1, 2)], axis=0)
    np.testing.assert_allclose(predictor.predict_array(x), expected, atol=2e-5)
    other = tmp_path / "other.pt"
    save_checkpoint(other, _tiny(3), metadata={"preprocess": to_dict(PreprocessConfig(size=(48, 48, 48)))})
    with pytest.raises(ConfigError, match="different preprocessing"):
        Predictor.from_checkpoints([paths[0], other], device="cpu")


def test_world_index_mapping_on_a_rotated_ct_grid_agrees_with_simpleitk(toys: SimpleNamespace) -> None:
    """The world <-> index mapping that puts predictions back on rotated CT grids, against SimpleITK's own."""
    g = toys.ct_geometry((1.0, 1.2, 2.0), origin_shift=(3.3, -2.1, 1.7), direction=toys.rotation_z(30.0))
    assert isinstance(g, Geometry)
    reference = sitk.Image([int(s) for s in g.size], sitk.sitkUInt8)
    reference.SetSpacing([float(s) for s in g.spacing])
    reference.SetOrigin([float(o) for o in g.origin])
    reference.SetDirection([float(d) for d in g.direction])
    rng = np.random.default_rng(0)
    for point in toys.CENTRE + rng.uniform(-60.0, 60.0, size=(6, 3)):
        expected = np.asarray(reference.TransformPhysicalPointToContinuousIndex([float(v) for v in point]))
        np.testing.assert_allclose(g.world_to_index(point), expected, atol=1e-9)
        np.testing.assert_allclose(g.index_to_world(expected), point, atol=1e-9)


@pytest.mark.gpu
def test_gpu_window_device_and_cpu_output_device(toys: SimpleNamespace) -> None:
    torch.manual_seed(0)
    model = toys.Pointwise(n_classes=1)
    x = _input(6, shape=(48, 32, 40))
    cpu = Predictor(
        [model], device="cpu", backend="torch", precision="fp32", window_size=(32, 32, 32)
    ).predict_array(x)
    gpu = Predictor(
        [model],
        device="cuda",
        backend="torch",
        precision="fp32",
        window_size=(32, 32, 32),
        output_device="cpu",
    ).predict_array(x)
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)


def test_larger_inference_grid_goes_window_by_window(toys: SimpleNamespace, tmp_path: Path) -> None:
    trained = PreprocessConfig(spacing=(4.0, 4.0, 4.0), size=(16, 16, 16))
    path = tmp_path / "m.pt"
    save_checkpoint(path, _tiny(7), metadata={"preprocess": to_dict(trained)})
    predictor = Predictor.from_checkpoints(
        path, device="cpu", backend="torch", precision="fp32", preprocess=toys.SMALL_CONFIG, overlap=0.0
    )
    assert predictor.window_size == (16, 16, 16) and predictor.preprocess.size == (32, 32, 32)
    case = toys.write_case(tmp_path, "CHUS010", toys.ct_geometry((1.0, 1.0, 2.0)))
    pred = predictor.predict_case(case)
    ct = sitk.ReadImage(str(case.ct_path))
    assert pred.mask.GetSize() == ct.GetSize() and pred.reference.size == (32, 32, 32)


def test_odd_sized_input_is_padded_and_cropped(toys: SimpleNamespace) -> None:
    torch.manual_seed(0)
    model = toys.Pointwise(n_classes=1)
    x = _input(8, shape=(10, 17, 5))
    got = Predictor([model], device="cpu", backend="torch", precision="fp32").predict_array(x)
    expected = _probs(model, torch.from_numpy(x)[None])[0].numpy()
    assert got.shape == (1, 10, 17, 5)
    np.testing.assert_allclose(got, expected, atol=1e-5)
