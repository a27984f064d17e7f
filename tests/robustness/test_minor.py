"""Minor findings of issue 23's second corpus (17): duplicate YAML keys, export over its own input,
labels visualize does not draw, training without foreground."""

from __future__ import annotations

from pathlib import Path

from robust_helpers import assert_clean_error, copy_dataset, invoke


def test_a_duplicate_yaml_key_is_an_error(preprocessed: Path, tmp_path: Path) -> None:
    """A key given twice used to take the last value silently."""
    config = tmp_path / "train.yaml"
    config.write_text("epochs: 1\nlr: 0.001\nepochs: 300\n")
    code, output = invoke(["train", preprocessed, tmp_path / "runs", "--config", config, "--device", "cpu"])
    assert_clean_error(code, output, "error:", str(config), "duplicate key 'epochs'")


def test_export_refuses_to_overwrite_its_own_input(checkpoint: Path, tmp_path: Path) -> None:
    """``export CKPT CKPT --force`` overwrote the checkpoint it read."""
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(checkpoint.read_bytes())
    before = ckpt.read_bytes()
    code, output = invoke(["export", ckpt, ckpt, "--force"])
    assert_clean_error(code, output, "error:", "the output is the input checkpoint")
    assert ckpt.read_bytes() == before


def test_visualize_warns_about_labels_it_does_not_draw(raw_dataset: Path, tmp_path: Path) -> None:
    """A prediction with label 3 (e.g. of a 5-output model) lost its label 3 contours silently."""
    import SimpleITK as sitk

    case = sorted(p for p in raw_dataset.iterdir() if p.is_dir())[0]
    label = sitk.ReadImage(str(case / f"{case.name}_ct_gtvt.nii.gz"))
    array = sitk.GetArrayFromImage(label)
    array[array == 1] = 3
    array[0, 0, :2] = 7
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    pred = sitk.GetImageFromArray(array)
    pred.CopyInformation(label)
    sitk.WriteImage(pred, str(pred_dir / f"{case.name}.nii.gz"))
    code, output = invoke(["visualize", case, tmp_path / "png", "-p", pred_dir])
    assert code == 0, output
    assert (tmp_path / "png" / f"{case.name}.png").is_file()
    flat = "".join(output.split())  # rich wraps the log line
    said = f"{pred_dir / case.name}.nii.gz: label values 3, 7 not drawn"
    assert "".join(said.split()) in flat, output


def test_training_on_labels_without_foreground_warns(raw_dataset: Path, tmp_path: Path, small_config) -> None:  # type: ignore[no-untyped-def]
    """No foreground voxel in any training case trained a background-only model without a word."""
    import numpy as np
    import SimpleITK as sitk

    from hecktorseg.preprocessing import preprocess_dataset

    raw = copy_dataset(raw_dataset, tmp_path / "raw")
    for label in sorted(raw.glob("*/*_ct_gtvt.nii.gz")):
        image = sitk.ReadImage(str(label))
        empty = sitk.GetImageFromArray(np.zeros_like(sitk.GetArrayFromImage(image)))
        empty.CopyInformation(image)
        sitk.WriteImage(empty, str(label))
    pre = tmp_path / "pre"
    assert preprocess_dataset(raw, pre, small_config).ok
    code, output = invoke(
        ["train", pre, tmp_path / "runs", "--n-filters", "2", "--epochs", "1", "--device", "cpu",
         "--split", "random", "--n-folds", "3", "--fold", "0", "--no-plot", "--num-workers", "0"]
    )  # fmt: skip
    assert code == 0, output
    flat = " ".join(output.split())
    assert "WARNING" in flat and "none of the 2 training cases has a labelled voxel" in flat, output
