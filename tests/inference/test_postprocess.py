"""Post-processing (largest GTVp component, small GTVn removal in mm³) and 0/1/2 masks on the CT grid."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from hecktorseg.errors import ConfigError
from hecktorseg.inference import (
    Predictor,
    keep_largest_component,
    postprocess_mask,
    predict_dataset,
    remove_small_components,
)
from hecktorseg.io import Case, Geometry


def _two_of_each() -> np.ndarray:
    """GTVp: blobs of 8 and 64 voxels; GTVn: blobs of 9 (3×3×1) and 4 (2×2×1) voxels, apart."""
    mask = np.zeros((12, 12, 12), np.uint8)
    mask[0:2, 0:2, 0:2] = 1
    mask[5:9, 5:9, 5:9] = 1
    mask[0, 8:11, 8:11] = 2
    mask[11, 0:2, 9:11] = 2
    return mask


def test_largest_component_applies_to_gtvp_only() -> None:
    mask = _two_of_each()
    out = postprocess_mask(mask, (1.0, 1.0, 1.0), largest_component=True)
    assert (out == 1).sum() == 64 and out[5:9, 5:9, 5:9].all()
    np.testing.assert_array_equal(out == 2, mask == 2)  # both nodes kept
    # the generic function with labels=None still reduces every label
    assert (keep_largest_component(mask) == 2).sum() == 9


def test_small_gtvn_removed_by_volume_with_anisotropic_spacing() -> None:
    mask = _two_of_each()
    spacing = (0.5, 1.0, 4.0)  # (x, y, z): 2 mm³ per voxel → nodes of 18 and 8 mm³
    kept = remove_small_components(mask, spacing, 10.0)
    assert (kept == 2).sum() == 9 and kept[11].sum() == 0
    np.testing.assert_array_equal(kept == 1, mask == 1)  # GTVp untouched
    # strictly below the threshold goes: 18 mm³ stays at 18, goes at 18.01
    assert (remove_small_components(mask, spacing, 18.0) == 2).sum() == 9
    assert (remove_small_components(mask, spacing, 18.01) == 2).sum() == 0
    # with 1 mm³ voxels both nodes (9 and 4 mm³) are below 10 mm³
    assert (remove_small_components(mask, (1.0, 1.0, 1.0), 10.0) == 2).sum() == 0
    # 26-connectivity: two voxels touching at a corner are one component of 2 voxels
    corner = np.zeros((3, 3, 3), np.uint8)
    corner[0, 0, 0] = corner[1, 1, 1] = 2
    assert (remove_small_components(corner, (1.0, 1.0, 1.0), 2.0) == 2).sum() == 2
    with pytest.raises(ConfigError):
        remove_small_components(mask, spacing, -1.0)
    with pytest.raises(ConfigError):
        remove_small_components(mask, (1.0, 1.0), 1.0)


def test_both_post_processings_together() -> None:
    mask = _two_of_each()
    out = postprocess_mask(mask, (1.0, 1.0, 1.0), largest_component=True, min_gtvn_volume_mm3=5.0)
    assert (out == 1).sum() == 64 and (out == 2).sum() == 9


def test_three_class_predict_writes_argmax_of_mapped_probabilities_on_the_ct_grid(
    dataset_2021: tuple[Path, Path, list[Case]], toys: SimpleNamespace, tmp_path: Path
) -> None:
    root, table, cases = dataset_2021
    from hecktorseg.preprocessing import PreprocessConfig

    model = toys.Pointwise(n_classes=3)
    with torch.no_grad():  # class 1 = dense CT; class 2 = PET uptake in air (the PET's blurred rim)
        model.conv.weight.zero_()
        model.conv.bias.zero_()
        model.conv.weight[1, 0] = 40.0
        model.conv.weight[2, 0] = -40.0
        model.conv.weight[2, 1] = 3.0
        model.conv.bias[2] = -40.0
    predictor = Predictor(
        [model],
        device="cpu",
        precision="fp32",
        tta=True,
        preprocess=PreprocessConfig(spacing=(2.0, 2.0, 2.0), size=(32, 32, 32)),
        min_gtvn_volume=0,  # the plain arg-max (the default removes GTVn specks)
    )
    report = predict_dataset(root, tmp_path, predictor, bbox_table=table, save_probabilities=True)
    assert report.ok and len(report.done) == 3
    seen: set[int] = set()
    for case in cases:
        mask = sitk.ReadImage(str(tmp_path / f"{case.patient_id}.nii.gz"))
        probs = sitk.ReadImage(str(tmp_path / "probabilities" / f"{case.patient_id}.nii.gz"))
        ct = sitk.ReadImage(str(case.ct_path))
        assert mask.GetPixelID() == sitk.sitkUInt8
        assert Geometry.from_image(mask) == Geometry.from_image(ct)
        assert probs.GetNumberOfComponentsPerPixel() == 3
        m = sitk.GetArrayFromImage(mask)
        p = sitk.GetArrayFromImage(probs)  # (z, y, x, 3)
        np.testing.assert_array_equal(m, np.argmax(p, axis=-1))
        seen |= set(np.unique(m).tolist())
    assert seen <= {0, 1, 2} and seen == {0, 1, 2}


def test_min_gtvn_volume_must_not_be_negative(make_ct_geometry: Callable[..., Geometry]) -> None:
    with pytest.raises(ConfigError, match="GTVn"):
        Predictor([torch.nn.Conv3d(2, 3, 1)], device="cpu", min_gtvn_volume=-5.0)


def test_label_choice_equals_numpy_argmax_including_ties() -> None:
    from hecktorseg.inference.case_prediction import _argmax_uint8

    rng = np.random.default_rng(0)
    for _ in range(10):
        channels = [rng.integers(0, 3, (4, 5, 6)).astype(np.float32) for _ in range(3)]  # many ties
        got = _argmax_uint8(channels)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, np.argmax(np.stack(channels), axis=0))


def test_min_gtvn_volume_default_is_the_one_chosen_on_validation() -> None:
    """The library, the predictor and ``predict --min-gtvn-volume`` share one default."""
    import typer.main

    from hecktorseg.cli import app
    from hecktorseg.inference import MIN_GTVN_VOLUME_MM3, PredictorConfig

    assert PredictorConfig().min_gtvn_volume == MIN_GTVN_VOLUME_MM3 == 200.0
    group = typer.main.get_command(app)
    container = group.commands["container"]  # type: ignore[attr-defined]
    commands = [group.commands["predict"], container.commands["predict"], container.commands["build"]]  # type: ignore[attr-defined]
    for command in commands:
        option = next(p for p in command.params if p.name == "min_gtvn_volume")
        assert option.default == MIN_GTVN_VOLUME_MM3, command.name
    import inspect

    from hecktorseg.container import build_context, container_predict

    for function in (build_context, container_predict):
        assert inspect.signature(function).parameters["min_gtvn_volume"].default == MIN_GTVN_VOLUME_MM3
