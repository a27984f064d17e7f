"""The OpenVINO model cache and OpenVINO itself meet hostile conditions (issue 23's second corpus):
damaged or altered cached files, a cache shared by two users, no home folder, telemetry."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from robust_helpers import cli_env, run_cli

pytest.importorskip("openvino")

OV = ["--backend", "openvino", "--precision", "fp32", "--device", "cpu"]


def _predict(raw: Path, out: Path, checkpoint: Path, env: dict[str, str | None], **kw: object) -> str:
    kw.setdefault("timeout", 600)  # converts a model: slow on a loaded machine
    code, output = run_cli(["predict", raw, out, "-m", checkpoint, *OV], env=env, **kw)  # type: ignore[arg-type]
    assert code == 0 and "Traceback" not in output, output
    return output


def _masks(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: sitk.GetArrayFromImage(sitk.ReadImage(str(p))) for p in sorted(folder.glob("*.nii.gz"))}


# -- telemetry (finding 8) -------------------------------------------------------------------------------
def test_converting_a_model_writes_nothing_in_home_intel(
    raw_dataset: Path, checkpoint: Path, tmp_path: Path
) -> None:
    """A cache miss converts the model; OpenVINO's telemetry used to write ~/intel/openvino_ga_cid."""
    home = tmp_path / "home"
    home.mkdir()
    env: dict[str, str | None] = {
        "HOME": str(home),
        "HECKTORSEG_CACHE_DIR": str(tmp_path / "cache"),
        "XDG_CACHE_HOME": None,
        "CI": None,  # OpenVINO switches its telemetry off in CI: test the user's case
        "TF_BUILD": None,
        "JENKINS_URL": None,
    }
    _predict(raw_dataset, tmp_path / "out", checkpoint, env)
    assert list((tmp_path / "cache").rglob("model.xml")), "the model was not converted"
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*")) == []


def test_import_openvino_uses_the_telemetry_stub() -> None:
    """In a fresh process: the converter's modules hold OpenVINO's no-op stub; the package stays importable."""
    code = (
        "import sys; from hecktorseg.runtime import import_openvino; import_openvino(); "
        "import openvino_telemetry; "
        "mods = [sys.modules[m].tm.__name__ for m in ('openvino.tools.ovc.convert_impl', "
        "'openvino.tools.ovc.telemetry_utils', 'openvino.tools.ovc.utils')]; print(set(mods))"
    )
    if importlib.util.find_spec("openvino_telemetry") is None:
        pytest.skip("openvino_telemetry is not installed")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120
    )
    assert proc.stdout.strip() == "{'openvino.tools.ovc.telemetry_stub'}", proc.stdout + proc.stderr


# -- the converted models on disk: checked when read (finding 3), readable by others (finding 4) ---------
def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv3d(2, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(4, 1, 1))


def _x() -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).normal(size=(1, 2, 16, 16, 16)).astype(np.float32))


def _compile(cache: Path) -> torch.Tensor:
    from hecktorseg.inference import backends

    backends.clear_compiled_cache()  # in-process memo off: read the disk cache
    choice = backends.RuntimeChoice("openvino", "fp32", torch.device("cpu"))
    return backends.compile_model(_net(), choice, cache=cache)(_x())


def _conversions() -> int:
    from hecktorseg.inference import backends

    return backends.conversion_counts()["openvino"]


def _damage(folder: Path, how: str) -> None:
    xml, weights = folder / "model.xml", folder / "model.bin"
    if how == "xml-text":
        xml.write_text("x\n")
    elif how == "bin-truncated":
        weights.write_bytes(weights.read_bytes()[:-40])
    elif how == "bin-empty":
        weights.write_bytes(b"")
    elif how == "bin-zeroed":
        weights.write_bytes(bytes(weights.stat().st_size))
    elif how == "bin-scaled":  # same size, plausible weights: the prediction changes silently
        values = np.frombuffer(weights.read_bytes(), dtype=np.float32).copy()
        weights.write_bytes((values * 1.5).tobytes())
    elif how == "no-digest":  # e.g. written by an older hecktorseg
        (folder / "sha256.json").unlink()


@pytest.mark.parametrize(
    "how", ["xml-text", "bin-truncated", "bin-empty", "bin-zeroed", "bin-scaled", "no-digest"]
)
def test_a_damaged_or_altered_cache_entry_is_converted_again(
    how: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Damage in the cache used to give a RuntimeError, or (weights scaled) other predictions, exit 0."""
    want = _compile(tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(want, _net()(_x()), rtol=1e-4, atol=1e-4)  # independent: eager torch
    (xml,) = tmp_path.rglob("model.xml")
    _damage(xml.parent, how)
    before = _conversions()
    with caplog.at_level("WARNING"):
        got = _compile(tmp_path)
    assert _conversions() == before + 1, "the damaged entry was used"
    assert "cannot use the cached model" in caplog.text and str(xml.parent) in caplog.text
    torch.testing.assert_close(got, want)
    again = _compile(tmp_path)  # the entry was replaced by a good one: read, not converted
    assert _conversions() == before + 1
    torch.testing.assert_close(again, want)
    assert sorted(p.name for p in xml.parent.parent.iterdir()) == [xml.parent.name]  # no leftovers


def test_cache_entries_are_readable_by_other_users(tmp_path: Path) -> None:
    """Converted-model folders used to be 0700 (tempfile.mkdtemp): another user got "Permission denied"."""
    old = os.umask(0o022)
    try:
        _compile(tmp_path / "cache")
    finally:
        os.umask(old)
    entries = [p for p in (tmp_path / "cache").rglob("*") if "blobs" not in p.relative_to(tmp_path).parts]
    assert any(p.name == "model.bin" for p in entries)
    for p in entries:
        need = 0o055 if p.is_dir() else 0o044
        assert p.stat().st_mode & need == need, f"{p}: {oct(p.stat().st_mode)}"


# -- no home folder (finding 5) ---------------------------------------------------------------------------
def test_no_home_folder_means_no_disk_cache_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """HOME unset and a uid without a passwd entry: Path.home() raises; that used to end the prediction."""

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    for name in ("HOME", "XDG_CACHE_HOME", "HECKTORSEG_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    with caplog.at_level("WARNING"):
        got = _compile_default()
    with torch.no_grad():
        torch.testing.assert_close(got, _net()(_x()), rtol=1e-4, atol=1e-4)
    assert "not kept on disk" in caplog.text and "HECKTORSEG_CACHE_DIR" in caplog.text


def _compile_default() -> torch.Tensor:
    from hecktorseg.inference import backends

    backends.clear_compiled_cache()
    choice = backends.RuntimeChoice("openvino", "fp32", torch.device("cpu"))
    return backends.compile_model(_net(), choice, cache=True)(_x())


_SETPRIV = shutil.which("setpriv")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or _SETPRIV is None, reason="needs root")
def test_another_user_without_home_predicts_from_a_shared_cache(raw_dataset: Path, checkpoint: Path) -> None:
    """As the corpus ran it: uid 1001 (no passwd entry), HOME unset; then with a cache root prepared."""
    base = Path(tempfile.mkdtemp(prefix="hecktorseg-other-user-"))  # pytest's folders are private
    try:
        base.chmod(0o755)
        raw = shutil.copytree(raw_dataset, base / "raw")
        model = shutil.copyfile(checkpoint, base / "model.pt")
        out = base / "out"
        out.mkdir()
        out.chmod(0o777)
        as_other = [str(_SETPRIV), "--reuid=1001", "--regid=1001", "--clear-groups"]
        env: dict[str, str | None] = {"HOME": None, "XDG_CACHE_HOME": None, "HECKTORSEG_CACHE_DIR": None}
        args = ["predict", raw, out / "a", "-m", model, *OV]
        code, output = run_cli(args, env=env, prefix=as_other, timeout=600)
        assert code == 0 and "Traceback" not in output, output
        assert "not kept on disk" in output
        cache = base / "cache"
        _predict(raw, base / "root-out", model, {"HECKTORSEG_CACHE_DIR": str(cache)})
        env["HECKTORSEG_CACHE_DIR"] = str(cache)  # prepared by root; not writable by uid 1001
        args = ["-v", "predict", raw, out / "b", "-m", model, *OV]
        code, output = run_cli(args, env=env, prefix=as_other, timeout=600)
        assert code == 0 and "Traceback" not in output, output
        assert "read from the cache" in output and "cannot use" not in output, output
        a, b = _masks(out / "a"), _masks(out / "b")
        assert a.keys() == b.keys() and len(a) == 3
        for name, mask in a.items():
            np.testing.assert_array_equal(mask, b[name])
    finally:
        shutil.rmtree(base, ignore_errors=True)
