"""Hostile input images through ``preprocess`` and ``predict``: one dataset, one run each.

Each patient of one dataset carries one defect (the first ``N_GOOD`` are
intact). ``preprocess`` and ``predict`` run once over it in a subprocess with a
timeout (a FIFO or ``/dev/zero`` used to hang them); each defect is then checked
on its own: a one-line error naming the file and the problem, no output for that
patient, and the intact patients done.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from robust_helpers import N_GOOD, case_line, run_cli, write_tiny_dataset

Defect = Callable[[Path, str], None]


def _ct(folder: Path, pid: str) -> Path:
    return folder / f"{pid}_ct.nii.gz"


def _pet(folder: Path, pid: str) -> Path:
    return folder / f"{pid}_pt.nii.gz"


def _label(folder: Path, pid: str) -> Path:
    return folder / f"{pid}_ct_gtvt.nii.gz"


def _rewrite(path: Path, change: Callable[[np.ndarray], np.ndarray]) -> None:
    image = sitk.ReadImage(str(path))
    array = change(sitk.GetArrayFromImage(image))
    out = sitk.GetImageFromArray(array)
    out.CopyInformation(image)
    sitk.WriteImage(out, str(path))


def zero_byte(folder: Path, pid: str) -> None:
    _ct(folder, pid).write_bytes(b"")


def text(folder: Path, pid: str) -> None:
    _ct(folder, pid).write_text("this is not an image\n")


def truncated(folder: Path, pid: str) -> None:
    path = _ct(folder, pid)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def nan(folder: Path, pid: str) -> None:
    def put(a: np.ndarray) -> np.ndarray:
        a = a.astype(np.float32)
        a[2, 2, 2] = np.nan
        return a

    _rewrite(_ct(folder, pid), put)


def inf(folder: Path, pid: str) -> None:
    def put(a: np.ndarray) -> np.ndarray:
        a = a.astype(np.float32)
        a[3, 3, 3] = np.inf
        return a

    _rewrite(_pet(folder, pid), put)


def two_d(folder: Path, pid: str) -> None:
    sitk.WriteImage(sitk.Image(32, 32, sitk.sitkFloat32), str(_ct(folder, pid)))


def four_d(folder: Path, pid: str) -> None:
    sitk.WriteImage(sitk.Image([8, 8, 8, 2], sitk.sitkFloat32), str(_ct(folder, pid)))


def fifo(folder: Path, pid: str) -> None:
    _ct(folder, pid).unlink()
    os.mkfifo(_ct(folder, pid))


def dev_zero(folder: Path, pid: str) -> None:
    _pet(folder, pid).unlink()
    _pet(folder, pid).symlink_to("/dev/zero")


def folder_as_image(folder: Path, pid: str) -> None:
    _ct(folder, pid).unlink()
    _ct(folder, pid).mkdir()


def huge_header(folder: Path, pid: str) -> None:
    """A header claiming 3000³ voxels in a small file (it gave 'unexpected MemoryError')."""
    path = _ct(folder, pid)
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[42:48] = np.array([3000, 3000, 3000], dtype="<i2").tobytes()
    path.write_bytes(gzip.compress(bytes(raw)))


def no_overlap(folder: Path, pid: str) -> None:
    path = _pet(folder, pid)
    image = sitk.ReadImage(str(path))
    image.SetOrigin(tuple(o + 5000.0 for o in image.GetOrigin()))
    sitk.WriteImage(image, str(path))


def bad_label(folder: Path, pid: str) -> None:
    def put(a: np.ndarray) -> np.ndarray:
        a = a.copy()
        a[0, 0, 0] = 7
        return a

    _rewrite(_label(folder, pid), put)


def label_other_grid(folder: Path, pid: str) -> None:
    path = _label(folder, pid)
    image = sitk.ReadImage(str(path))
    image.SetOrigin(tuple(o + 7.0 for o in image.GetOrigin()))
    sitk.WriteImage(image, str(path))


# name → (defect, file whose name the message must give (None: none), words of the problem, checked by predict)
DEFECTS: dict[str, tuple[Defect, Callable[[Path, str], Path] | None, tuple[str, ...], bool]] = {
    "zero-byte": (zero_byte, _ct, ("empty",), True),
    "text": (text, _ct, ("decompress",), True),
    "truncated": (truncated, _ct, ("ends early",), True),
    "nan": (nan, _ct, ("nan",), True),
    "inf": (inf, _pet, ("infinite",), True),
    "2d": (two_d, _ct, ("3-d",), True),
    "4d": (four_d, _ct, ("3-d",), True),
    "fifo": (fifo, _ct, ("fifo",), True),
    "dev-zero": (dev_zero, _pet, ("character device",), True),
    "folder": (folder_as_image, _ct, ("folder",), True),
    "huge-header": (huge_header, _ct, ("header announces",), True),
    "no-overlap": (no_overlap, None, ("overlap",), True),
    "bad-label": (bad_label, _label, ("label values",), False),
    "label-other-grid": (label_other_grid, _label, ("not on the ct grid",), False),
}

# Earlier outputs in predict's folder for the intact patients (item: earlier outputs trusted blindly)
EARLIER = ("zero-byte", "text", "folder")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("hostile") / "raw"
    ids = write_tiny_dataset(root, N_GOOD + len(DEFECTS))
    good, bad = ids[:N_GOOD], dict(zip(DEFECTS, ids[N_GOOD:], strict=True))
    for name, pid in bad.items():
        DEFECTS[name][0](root / pid, pid)
    return {"root": root, "good": good, "bad": bad}


@pytest.fixture(scope="module")
def preprocess_run(hostile: dict, small_config, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("hostile-pre") / "out"
    sp, sz = small_config.spacing, small_config.size
    code, output = run_cli(
        [
            "preprocess",
            hostile["root"],
            out,
            "--spacing",
            ",".join(map(str, sp)),
            "--size",
            ",".join(map(str, sz)),
        ]
    )
    return code, output, out


@pytest.fixture(scope="module")
def predict_run(hostile: dict, checkpoint: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("hostile-pred") / "out"
    out.mkdir()
    for kind, pid in zip(EARLIER, hostile["good"], strict=True):
        dest = out / f"{pid}.nii.gz"
        if kind == "zero-byte":
            dest.write_bytes(b"")
        elif kind == "text":
            dest.write_text("not an image\n")
        else:
            dest.mkdir()
    code, output = run_cli(["predict", hostile["root"], out, "-m", checkpoint, "--device", "cpu"])
    return code, output, out


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_preprocess_reports_each_bad_patient(defect: str, hostile: dict, preprocess_run) -> None:  # type: ignore[no-untyped-def]
    code, output, out = preprocess_run
    assert code == 1 and "Traceback" not in output and "unexpected" not in output.lower(), output
    pid = hostile["bad"][defect]
    _, which, words, _ = DEFECTS[defect]
    line = case_line(output, pid)
    for word in words:
        assert word in line.lower(), line
    if which is not None:
        assert which(Path(), pid).name in line, line
    assert not list((out / pid).glob("*.nii*")) if (out / pid).exists() else True
    assert not (out / pid / f"{pid}.json").exists()


def test_preprocess_finishes_the_intact_patients(hostile: dict, preprocess_run) -> None:  # type: ignore[no-untyped-def]
    _code, output, out = preprocess_run
    assert f"{N_GOOD} done" in output, output
    for pid in hostile["good"]:
        assert (out / pid / f"{pid}_ct.nii.gz").is_file()
    manifest = (out / "manifest.json").read_text()
    assert all(pid in manifest for pid in hostile["good"])
    assert not any(pid in manifest for pid in hostile["bad"].values())


@pytest.mark.parametrize("defect", [name for name, spec in DEFECTS.items() if spec[3]])
def test_predict_reports_each_bad_patient(defect: str, hostile: dict, predict_run) -> None:  # type: ignore[no-untyped-def]
    code, output, out = predict_run
    assert code == 1 and "Traceback" not in output and "unexpected" not in output.lower(), output
    pid = hostile["bad"][defect]
    _, which, words, _ = DEFECTS[defect]
    line = case_line(output, pid)
    for word in words:
        assert word in line.lower(), line
    if which is not None:
        assert which(Path(), pid).name in line, line
    assert not (out / f"{pid}.nii.gz").exists()


@pytest.mark.parametrize("earlier", EARLIER)
def test_predict_redoes_invalid_earlier_outputs(earlier: str, hostile: dict, predict_run) -> None:  # type: ignore[no-untyped-def]
    """A zero-byte or text <PID>.nii.gz is predicted again; a folder of that name is an error."""
    _code, output, out = predict_run
    pid = hostile["good"][EARLIER.index(earlier)]
    dest = out / f"{pid}.nii.gz"
    if earlier == "folder":
        line = case_line(output, pid)
        assert "folder" in line and dest.name in line, line
        assert dest.is_dir()
        return
    image = sitk.ReadImage(str(dest))  # a complete mask now
    ct = sitk.ReadImage(str(hostile["root"] / pid / f"{pid}_ct.nii.gz"))
    assert image.GetSize() == ct.GetSize()
    assert "skipped 0 existing" in output, output


def test_predict_skips_only_valid_earlier_outputs(
    raw_dataset: Path, checkpoint: Path, tmp_path: Path
) -> None:
    """Second run: complete masks are skipped (unchanged); a truncated one is predicted again."""
    from hecktorseg.inference import Predictor, predict_dataset

    predictor = Predictor.from_checkpoints(checkpoint, device="cpu")
    out = tmp_path / "pred"
    first = predict_dataset(raw_dataset, out, predictor)
    assert first.ok and len(first.done) == N_GOOD
    a, b = first.done[:2]
    kept = (out / f"{a}.nii.gz").read_bytes()
    (out / f"{b}.nii.gz").write_bytes((out / f"{b}.nii.gz").read_bytes()[:-20])
    again = predict_dataset(raw_dataset, out, predictor)
    assert again.done == (b,) and a in again.skipped and again.ok
    assert (out / f"{a}.nii.gz").read_bytes() == kept
    sitk.ReadImage(str(out / f"{b}.nii.gz"))
