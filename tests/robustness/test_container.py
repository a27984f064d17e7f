"""The Grand Challenge image (``container build`` / ``container predict``) meets hostile arguments
and inputs (issue 23's second corpus)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from robust_helpers import assert_clean_error, invoke


# -- container build --force: never deletes the caller's files (finding 6) ----------------------------
@pytest.mark.parametrize("target", ["..", ".", "../b", "a-parent", "holds-model"])
def test_build_force_refuses_folders_holding_cwd_or_inputs(
    target: str, checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``container build .. --force`` from a/b used to delete a/ and the checkpoint in it."""
    a = tmp_path / "a"
    (a / "b").mkdir(parents=True)
    model = shutil.copyfile(checkpoint, a / "model.pt")
    (a / "b" / "notes.txt").write_text("keep me")
    monkeypatch.chdir(a / "b")
    out = {"a-parent": str(tmp_path), "holds-model": str(a)}.get(target, target)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, output = invoke(["container", "build", out, "-m", model, "--force", "--no-sample"])
    assert_clean_error(code, output, "error:", "build context folder")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (a / "b" / "notes.txt").read_text() == "keep me"


# -- container build --image: no shell injection (finding 7) -------------------------------------------
@pytest.mark.parametrize("image", ["x:$(touch PWN)", "x;touch PWN", "x:`touch PWN`", "X:Y", "x y", "x:"])
def test_build_refuses_image_names_outside_dockers_grammar(
    image: str, checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--image 'x:$(touch PWN)'`` used to go verbatim into run_sample.sh, which ran the command."""
    monkeypatch.chdir(tmp_path)
    code, output = invoke(["container", "build", "ctx", "-m", checkpoint, "--image", image])
    assert_clean_error(code, output, "error:", "not a valid Docker image name", "--image")
    assert not (tmp_path / "ctx").exists() and not (tmp_path / "PWN").exists()


@pytest.mark.parametrize(
    "image",
    ["hecktorseg-gc:1.0", "team/seg", "registry.example.com:5000/team/my_seg__v.2:V2-rc.1", "localhost/a-b"],
)
def test_valid_image_names_reach_run_sample_verbatim(image: str) -> None:
    """Names of Docker's grammar pass, and the script's quoting gives bash exactly the name."""
    from hecktorseg.container._checks import check_image_tag
    from hecktorseg.container.templates import _run_sample

    assert check_image_tag(image) == image
    lines = [line for line in _run_sample(image).splitlines() if "IMAGE=" in line and "$(" not in line]
    script = "\n".join(["set -u; set --", *lines, 'printf %s "$IMAGE"'])
    assert subprocess.run(["bash", "-c", script], capture_output=True, text=True).stdout == image
