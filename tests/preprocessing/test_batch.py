"""Whole datasets: manifest, resume, force, interruption, parts, parallel, bad cases."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import attrs
import numpy as np
import pytest
import SimpleITK as sitk
from pre_phantoms import IDENTITY, SPHERE_CENTRE, grid_centred_on, simple_case

from hecktorseg.config import to_dict
from hecktorseg.errors import ConfigError, DataError
from hecktorseg.io import BBox, Case, Geometry, read_image
from hecktorseg.preprocessing import (
    MANIFEST_NAME,
    ManifestEntry,
    PreprocessConfig,
    merge_manifests,
    output_paths,
    preprocess_dataset,
    read_manifest,
    select_part,
)
from hecktorseg.preprocessing.record import record_path


def make_cases(root: Path, n: int = 3) -> list[Case]:
    centres = ["CHGJ", "CHUM", "CHUS", "CHMR"]
    return [simple_case(root, f"{centres[i % 4]}{i:03d}", with_label=i != 1) for i in range(n)]


def arrays(out: Path, pid: str) -> list[np.ndarray]:
    files = sorted((out / pid).glob("*.nii.gz"))
    return [sitk.GetArrayFromImage(sitk.ReadImage(str(f))) for f in files]


def test_outputs_and_manifest_round_trip(tmp_path: Path, small_config: PreprocessConfig) -> None:
    cases = make_cases(tmp_path / "raw")
    out = tmp_path / "out"
    seen: list[tuple[int, int, str]] = []
    report = preprocess_dataset(cases, out, small_config, progress=lambda a, b, m: seen.append((a, b, m)))
    assert report.ok and sorted(report.done) == sorted(c.patient_id for c in cases)
    assert seen[-1][:2] == (3, 3)
    assert report.manifest_path == (out / MANIFEST_NAME).absolute()
    manifest = read_manifest(out)
    assert manifest.config == small_config
    assert manifest.patient_ids == sorted(c.patient_id for c in cases)
    raw = json.loads((out / MANIFEST_NAME).read_text())
    assert raw["hecktorseg_version"] and raw["config"] == to_dict(small_config)
    for case in cases:
        entry = manifest.entries[case.patient_id]
        paths = output_paths(out, case.patient_id, small_config)
        assert entry.ct_path == paths["ct"].absolute() and entry.ct_path.is_file()
        assert entry.pet_path == paths["pet"].absolute() and entry.pet_path.is_file()
        if case.label_path is None:
            assert entry.label_path is None and not paths["label"].exists()
            assert "label" not in entry.sources
        else:
            assert entry.label_path == paths["label"].absolute()
            lab = sitk.ReadImage(str(entry.label_path))
            assert lab.GetPixelID() == sitk.sitkUInt8
        assert entry.sources["ct"].path == case.ct_path.absolute()
        assert len(entry.sources["ct"].sha256) == 64
        assert entry.ct_geometry == Geometry.from_image(sitk.ReadImage(str(case.ct_path)))
        assert entry.pet_geometry == Geometry.from_image(sitk.ReadImage(str(case.pet_path)))
        assert Geometry.from_image(sitk.ReadImage(str(entry.ct_path))).is_close(entry.reference)
        assert entry.bbox == case.bbox and entry.box_source == "table"
        # paths in the JSON are relative to OUT
        stored = raw["cases"][case.patient_id]
        assert stored["outputs"]["ct"] == f"{case.patient_id}/{case.patient_id}_ct.nii.gz"
        assert not Path(stored["sources"]["ct"]["path"]).is_absolute()
        assert ManifestEntry.from_dict(entry.to_dict(out), out) == entry
        assert entry.pet_fov_mask().shape == entry.reference.shape_zyx
    # the folder can move: outputs are found relative to it
    moved = tmp_path / "moved"
    shutil.move(str(out), moved)
    assert read_manifest(moved).entries[cases[0].patient_id].ct_path.is_file()


def test_rerun_skips_force_redoes_and_changes_are_detected(
    tmp_path: Path, small_config: PreprocessConfig
) -> None:
    cases = make_cases(tmp_path / "raw")
    out = tmp_path / "out"
    preprocess_dataset(cases, out, small_config)
    again = preprocess_dataset(cases, out, small_config)
    assert again.done == () and len(again.skipped) == 3
    forced = preprocess_dataset(cases, out, small_config, force=True)
    assert len(forced.done) == 3
    # a changed source is redone, the others are skipped
    ct = sitk.ReadImage(str(cases[0].ct_path))
    sitk.WriteImage(ct + 1.0, str(cases[0].ct_path), True)
    changed = preprocess_dataset(cases, out, small_config)
    assert changed.done == (cases[0].patient_id,) and len(changed.skipped) == 2
    # a changed box is redone
    moved_box = attrs.evolve(cases[1], bbox=BBox.from_center(SPHERE_CENTRE, (50.0, 50.0, 50.0)))
    rebox = preprocess_dataset([cases[0], moved_box, cases[2]], out, small_config)
    assert rebox.done == (cases[1].patient_id,)
    # a changed config redoes everything
    other = attrs.evolve(small_config, ct_fill=-1000.0)
    assert len(preprocess_dataset(cases, out, other).done) == 3
    assert read_manifest(out).config == other


def test_rerun_after_interruption(tmp_path: Path, small_config: PreprocessConfig) -> None:
    cases = make_cases(tmp_path / "raw")
    out = tmp_path / "out"
    preprocess_dataset(cases, out, small_config)
    a, b, c = (case.patient_id for case in cases)
    # a: killed after its images, before its record; a stray temp file of a half-written image
    record_path(out, a).unlink()
    stray = out / a / f".{a}_pt.nii.gz.x1y2z3.tmp.nii.gz"
    stray.write_bytes(b"half")
    # b: an output went missing
    (out / b / f"{b}_pt.nii.gz").unlink()
    # a stray temp file of the index
    (out / f".{MANIFEST_NAME}.abc.tmp.json").write_text("{")
    report = preprocess_dataset(cases, out, small_config)
    assert sorted(report.done) == sorted([a, b]) and report.skipped == (c,)
    assert not stray.exists()
    assert not list(out.glob(".*tmp*")) and not list(out.glob("*/.*tmp*"))
    assert sorted(read_manifest(out).entries) == sorted([a, b, c])
    # a case without its record is not in the manifest (it is not done)
    record_path(out, c).unlink()
    assert c not in read_manifest(out).entries


def test_parts_are_disjoint_cover_all_and_merge(tmp_path: Path, small_config: PreprocessConfig) -> None:
    cases = make_cases(tmp_path / "raw", n=5)
    shares = [select_part(cases, 3, k) for k in range(3)]
    ids = [c.patient_id for share in shares for c in share]
    assert sorted(ids) == sorted(c.patient_id for c in cases) and len(set(ids)) == len(ids)
    assert select_part(list(reversed(cases)), 3, 1) == shares[1]  # order of the input does not matter
    with pytest.raises(ConfigError):
        select_part(cases, 3, 3)
    out = tmp_path / "out"
    done: list[str] = []
    for k in (2, 0):
        report = preprocess_dataset(cases, out, small_config, num_parts=3, part_id=k)
        assert report.ok and sorted(report.done) == sorted(c.patient_id for c in shares[k])
        done += list(report.done)
    assert sorted(read_manifest(out).entries) == sorted(done)
    preprocess_dataset(cases, out, small_config, num_parts=3, part_id=1)
    manifest = merge_manifests(out)
    assert manifest.patient_ids == sorted(c.patient_id for c in cases)
    index = json.loads((out / MANIFEST_NAME).read_text())
    assert sorted(index["cases"]) == manifest.patient_ids


def test_parallel_equals_serial(tmp_path: Path, small_config: PreprocessConfig) -> None:
    cases = make_cases(tmp_path / "raw", n=3)
    serial = preprocess_dataset(cases, tmp_path / "serial", small_config, workers=1)
    seen: list[int] = []
    parallel = preprocess_dataset(
        cases, tmp_path / "parallel", small_config, workers=2, progress=lambda a, b, m: seen.append(a)
    )
    assert serial.ok and parallel.ok and sorted(serial.done) == sorted(parallel.done)
    assert seen[-1] == 3
    ms, mp = read_manifest(tmp_path / "serial"), read_manifest(tmp_path / "parallel")
    for case in cases:
        pid = case.patient_id
        for x, y in zip(arrays(tmp_path / "serial", pid), arrays(tmp_path / "parallel", pid), strict=True):
            np.testing.assert_array_equal(x, y)
        es, ep = ms.entries[pid], mp.entries[pid]
        assert (es.reference, es.bbox, es.sources["ct"].sha256) == (
            ep.reference,
            ep.bbox,
            ep.sources["ct"].sha256,
        )


def _bad_cases(root: Path) -> dict[str, Case]:
    good = simple_case(root, "CHGJ001")
    cases = {"good": good}
    missing = simple_case(root, "CHGJ002")
    missing.pet_path.unlink()
    cases["missing"] = missing
    far = simple_case(root, "CHGJ003")
    far_geo = grid_centred_on(SPHERE_CENTRE + 1000.0, (10, 10, 10), (4.0, 4.0, 4.0), IDENTITY)
    sitk.WriteImage(far_geo.apply_to(sitk.Image(list(far_geo.size), sitk.sitkFloat32)), str(far.pet_path))
    cases["no_overlap"] = far
    outside = simple_case(root, "CHGJ004")
    cases["box_outside"] = attrs.evolve(outside, bbox=BBox.from_center(SPHERE_CENTRE - 500.0, (48.0,) * 3))
    nan = simple_case(root, "CHGJ005")
    ct = sitk.GetArrayFromImage(sitk.ReadImage(str(nan.ct_path)))
    ct[3, 4, 5] = np.nan
    img = sitk.GetImageFromArray(ct)
    img.CopyInformation(sitk.ReadImage(str(nan.ct_path)))
    sitk.WriteImage(img, str(nan.ct_path), True)
    cases["nan"] = nan
    grid = simple_case(root, "CHGJ006")
    lab = sitk.ReadImage(str(grid.label_path))
    lab.SetOrigin(tuple(np.asarray(lab.GetOrigin()) + 3.0))
    sitk.WriteImage(lab, str(grid.label_path), True)
    cases["label_grid"] = grid
    return cases


def test_bad_cases_are_reported_and_the_others_finish(tmp_path: Path, small_config: PreprocessConfig) -> None:
    cases = _bad_cases(tmp_path / "raw")
    report = preprocess_dataset(list(cases.values()), tmp_path / "out", small_config)
    assert report.done == ("CHGJ001",)
    assert not report.ok
    failed = report.failed
    assert set(failed) == {c.patient_id for k, c in cases.items() if k != "good"}
    assert "not found" in failed["CHGJ002"] and "CHGJ002" in failed["CHGJ002"]
    assert "do not overlap" in failed["CHGJ003"] and "CHGJ003" in failed["CHGJ003"]
    assert "outside" in failed["CHGJ004"] and "CHGJ004" in failed["CHGJ004"]
    assert "NaN" in failed["CHGJ005"]
    assert "not on the CT grid" in failed["CHGJ006"] and "CHGJ006_ct_gtvt" in failed["CHGJ006"]
    assert read_manifest(tmp_path / "out").patient_ids == ["CHGJ001"]
    # failed cases leave no outputs behind
    for pid in failed:
        assert (
            not list((tmp_path / "out" / pid).glob("*.nii*")) if (tmp_path / "out" / pid).exists() else True
        )
    # the label check can be relaxed
    relaxed = attrs.evolve(small_config, check_label_grid=False)
    assert preprocess_dataset([cases["label_grid"]], tmp_path / "out2", relaxed).ok


def test_bad_cases_in_parallel(tmp_path: Path, small_config: PreprocessConfig) -> None:
    cases = _bad_cases(tmp_path / "raw")
    report = preprocess_dataset(list(cases.values()), tmp_path / "out", small_config, workers=2)
    assert report.done == ("CHGJ001",) and len(report.failed) == 5


def test_invalid_arguments(tmp_path: Path, small_config: PreprocessConfig) -> None:
    case = simple_case(tmp_path / "raw", "CHGJ001")
    with pytest.raises(ConfigError, match="duplicate"):
        preprocess_dataset([case, case], tmp_path / "out", small_config)
    with pytest.raises(ConfigError):
        preprocess_dataset([case], tmp_path / "out", small_config, workers=0)
    with pytest.raises(DataError):
        read_manifest(tmp_path / "nothing-here")
    # writing into the input folder would overwrite the inputs: refused per case
    report = preprocess_dataset([case], tmp_path / "raw", small_config)
    assert "output folder holds" in report.failed["CHGJ001"]
    assert case.ct_path.is_file()


def test_mixed_configs_are_refused_by_read_manifest(tmp_path: Path, small_config: PreprocessConfig) -> None:
    cases = make_cases(tmp_path / "raw", n=2)
    out = tmp_path / "out"
    preprocess_dataset(cases[:1], out, small_config)
    report = preprocess_dataset(cases[1:], out, attrs.evolve(small_config, pet_fill=-1.0))
    assert report.ok and report.warnings
    with pytest.raises(ConfigError, match="different configurations"):
        read_manifest(out)


KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
import SimpleITK as sitk
from hecktorseg.preprocessing import PreprocessConfig, preprocess_dataset
sys.path.insert(0, sys.argv[3])
from pre_phantoms import simple_case

raw, out = Path(sys.argv[1]), Path(sys.argv[2])
cases = [simple_case(raw, f"CHGJ{i:03d}") for i in range(1, 4)]
real_write = sitk.WriteImage
calls = []

def dying_write(image, path, *args):
    calls.append(path)
    if len(calls) == 5:  # 2nd image of the 2nd case: die half-way through writing it
        real_write(image, path, *args)
        with open(path, "r+b") as handle:
            handle.truncate(os.path.getsize(path) // 2)
        os.kill(os.getpid(), signal.SIGKILL)
    return real_write(image, path, *args)

sitk.WriteImage = dying_write
preprocess_dataset(cases, out, PreprocessConfig(spacing=(2.0,) * 3, size=(32,) * 3))
"""


def test_kill_9_then_rerun_completes(tmp_path: Path, small_config: PreprocessConfig) -> None:
    import subprocess
    import sys

    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    here = Path(__file__).parent
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "raw"), str(tmp_path / "out"), str(here)],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr.decode()
    out = tmp_path / "out"
    # the first case is complete, the second has no record (so it is not done), nothing is half-written
    assert (out / "CHGJ001" / "CHGJ001_record.json").is_file()
    assert not (out / "CHGJ002" / "CHGJ002_record.json").exists()
    assert list(read_manifest(out).entries) == ["CHGJ001"]
    assert len(list(out.glob("CHGJ002/.*tmp*"))) == 1  # the half-written file is a temporary one
    for f in out.glob("*/[!.]*.nii.gz"):
        read_image(f)  # every image under its final name is whole
    cases = [simple_case(tmp_path / "raw", f"CHGJ{i:03d}") for i in range(1, 4)]
    report = preprocess_dataset(cases, out, small_config)
    assert report.skipped == ("CHGJ001",) and report.done == ("CHGJ002", "CHGJ003")
    assert read_manifest(out).patient_ids == ["CHGJ001", "CHGJ002", "CHGJ003"]
    assert not list(out.rglob(".*tmp*"))
