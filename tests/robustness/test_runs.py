"""Runs that meet other runs or die: concurrent preprocess runs, killed parents, SIGINT and kill -9.

Processes are real (subprocesses with timeouts). Nothing here waits a fixed time
for something to happen: the tests wait for a state (a line printed, a process
gone) with a deadline, and their assertions hold for every interleaving.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from robust_helpers import N_GOOD, TIMEOUT_S, assert_clean_error, cli_env, copy_dataset, invoke, run_cli

SMALL = ["--size", "16", "--spacing", "9"]


def _arrays(folder: Path) -> dict[str, np.ndarray]:
    return {
        p.relative_to(folder).as_posix(): sitk.GetArrayFromImage(sitk.ReadImage(str(p)))
        for p in sorted(folder.glob("*/*.nii.gz"))
    }


def _assert_same_arrays(a: Path, b: Path) -> None:
    left, right = _arrays(a), _arrays(b)
    assert sorted(left) == sorted(right) and len(left) == 3 * N_GOOD
    for name, array in left.items():
        np.testing.assert_array_equal(array, right[name], err_msg=name)


# -- two runs, one folder -----------------------------------------------------------------------------
def test_a_locked_folder_is_refused(raw_dataset: Path, tmp_path: Path) -> None:
    """Another run holds the folder: a one-line "another run is writing here", nothing written."""
    from hecktorseg.io.files import output_lock
    from hecktorseg.preprocessing.batch import LOCK_NAME

    out = tmp_path / "out"
    with output_lock(out, LOCK_NAME):
        code, output = invoke(["preprocess", raw_dataset, out, *SMALL])
        line = assert_clean_error(code, output, "error:", str(out), "another preprocess run is writing here")
        assert str(os.getpid()) in line
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]
    code, output = invoke(["preprocess", raw_dataset, out, *SMALL])  # lock released: runs
    assert code == 0, output


def test_parts_of_one_split_share_the_folder(raw_dataset: Path, tmp_path: Path) -> None:
    """--num-parts runs share the folder lock; the same part twice does not."""
    from hecktorseg.io.files import output_lock
    from hecktorseg.preprocessing.batch import LOCK_NAME

    out = tmp_path / "out"
    with output_lock(out, LOCK_NAME, shared=True), output_lock(out, ".hecktorseg-preprocess-part1of2.lock"):
        code, output = invoke(["preprocess", raw_dataset, out, *SMALL, "--num-parts", "2", "--part-id", "0"])
        assert code == 0, output
        code, output = invoke(["preprocess", raw_dataset, out, *SMALL, "--num-parts", "2", "--part-id", "1"])
        assert_clean_error(code, output, "error:", "another preprocess run of part 1 of 2 is writing here")
        code, output = invoke(["preprocess", raw_dataset, out, *SMALL])
        assert_clean_error(code, output, "error:", "another preprocess run is writing here")


def test_two_concurrent_runs(raw_dataset: Path, tmp_path: Path) -> None:
    """Two real processes into one folder: each finishes or is refused in one line; the result is whole."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "hecktorseg", "preprocess", str(raw_dataset), str(out), *SMALL]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=cli_env())
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        try:
            output, _ = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            pytest.fail("a concurrent preprocess run hung")
        results.append((proc.returncode, output))
    for code, output in results:
        assert "Traceback" not in output and "unexpected" not in output.lower(), output
        assert code == 0 or "another preprocess run is writing here" in output, output
    assert any(code == 0 for code, _ in results), results
    assert len(_arrays(out)) == 3 * N_GOOD  # every image complete and readable
    assert not list(out.rglob(".*.tmp*")), "temporary files left behind"
    code, output = invoke(["preprocess", raw_dataset, out, *SMALL])
    assert code == 0 and f"{N_GOOD} up to date" in output, output


def test_temporary_names_are_unique_per_process(tmp_path: Path) -> None:
    """Temporary files carry the writer's pid; only those of finished processes count as stale."""
    from hecktorseg.io import atomic_path
    from hecktorseg.io.files import is_stale_temp
    from hecktorseg.preprocessing.batch import _clean_case_dir

    dest = tmp_path / "P1" / "P1_ct.nii.gz"
    with atomic_path(dest) as one, atomic_path(dest) as two:
        assert one != two and f".{os.getpid()}-" in one.name and f".{os.getpid()}-" in two.name
        assert not is_stale_temp(one)
        one.write_bytes(b"x")
        two.write_bytes(b"y")
    assert dest.read_bytes() == b"x"
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = dest.parent / f".P1_pt.nii.gz.{int(done.stdout)}-abc.tmp.nii.gz"
    alive = dest.parent / f".P1_pt.nii.gz.{os.getppid()}-abc.tmp.nii.gz"  # pytest's parent still runs
    old_style = dest.parent / ".P1_pt.nii.gz.abc.tmp.nii.gz"
    for p in (dead, alive, old_style):
        p.write_bytes(b"half")
    assert is_stale_temp(dead) and is_stale_temp(old_style) and not is_stale_temp(alive)
    _clean_case_dir(dest.parent, "P1")
    assert alive.exists() and not dead.exists() and not old_style.exists()


# -- killed parents: no orphaned workers ----------------------------------------------------------------
POOL_DRIVER = """
import glob, os, sys, time
from hecktorseg.preprocessing.batch import _worker_pool


def task(stem):
    open(stem + str(os.getpid()), "w").close()  # "I am running"
    time.sleep(600)


if __name__ == "__main__":
    stem = sys.argv[1]
    pool = _worker_pool(2)
    futures = [pool.submit(task, stem) for _ in range(2)]
    while len(glob.glob(stem + "*")) < 2:  # wait until both workers run a task
        time.sleep(0.05)
    print(" ".join(p[len(stem):] for p in glob.glob(stem + "*")), flush=True)
    time.sleep(600)
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its parent (init) has not reaped it yet


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            proc.kill()
            pytest.fail("the driver printed nothing")
    return proc.stdout.readline()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    """kill -9 of the main process: its preprocessing workers end too (they used to stay, ~340 MB each)."""
    driver = tmp_path / "driver.py"
    driver.write_text(POOL_DRIVER)
    proc = subprocess.Popen(
        [sys.executable, str(driver), str(tmp_path / "running-")],
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
    )
    workers = [int(pid) for pid in _read_line(proc, TIMEOUT_S).split()]
    assert len(workers) == 2 and all(_running(pid) for pid in workers)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=TIMEOUT_S)
    deadline = time.monotonic() + 60
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in workers if _running(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"worker processes {left} outlived their killed parent"


# -- interrupted runs resume to the same result ---------------------------------------------------------
STOP_DRIVER = """
import os, signal, sys
import hecktorseg.preprocessing.batch as ds
from hecktorseg.cli import main

sig, after = getattr(signal, sys.argv[1]), int(sys.argv[2])
# A Ctrl-C reaches a program in the terminal's foreground, whose SIGINT is not ignored. Launched
# from a script's background job (`nox -s tests &`), Python inherits SIGINT as ignored and keeps
# it so (it installs its KeyboardInterrupt handler only over the default): restore the handler.
signal.signal(signal.SIGINT, signal.default_int_handler)
real, count = ds.write_image, [0]

def write_image(image, path, *args, **kwargs):
    out = real(image, path, *args, **kwargs)
    count[0] += 1
    if count[0] == after:
        os.kill(os.getpid(), sig)
    return out

ds.write_image = write_image
sys.argv = ["hecktorseg", *sys.argv[3:]]
main()
"""


IGNORING_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)
"""Runs a script with SIGINT ignored, as a background job of a shell script runs (and as pytest may
be run): the driver must not depend on how the test run was started (issue 23's flaky test)."""


@pytest.mark.parametrize(("sig", "code"), [("SIGKILL", -signal.SIGKILL), ("SIGINT", 130)])
def test_stopped_run_resumes_to_identical_arrays(
    sig: str, code: int, raw_dataset: Path, preprocessed: Path, tmp_path: Path
) -> None:
    """Stopped in the middle of the second case (kill -9 or Ctrl-C), the rerun gives the same arrays."""
    raw = copy_dataset(raw_dataset, tmp_path / "raw")
    out = tmp_path / "out"
    driver = tmp_path / "driver.py"
    driver.write_text(STOP_DRIVER)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            IGNORING_SIGINT,
            str(driver),
            sig,
            "4",
            "preprocess",
            str(raw),
            str(out),
            *SMALL,
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=cli_env(),
    )
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(list(out.glob("*/*.json"))) == 1  # only the first case is complete
    rerun, output = invoke(["preprocess", raw, out, *SMALL])
    assert rerun == 0 and "1 up to date" in output and f"{N_GOOD - 1} done" in output, output
    _assert_same_arrays(out, preprocessed)
    assert not list(out.rglob(".*.tmp*"))


def test_run_cli_reports_a_hang() -> None:
    """The corpus's own guard: a command that does not end fails the test instead of blocking it."""
    with pytest.raises(pytest.fail.Exception, match="hung"):
        run_cli(["--help"], timeout=0.001)


# -- earlier preprocessing outputs that are not complete ---------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "zero-byte", "text"])
def test_damaged_preprocessed_output_is_redone(
    damage: str, raw_dataset: Path, preprocessed: Path, tmp_path: Path
) -> None:
    """A damaged output image no longer counts as "up to date": that case is redone, the others kept."""
    out = tmp_path / "pre"
    shutil.copytree(preprocessed, out)
    victim = sorted(out.glob("*/*_pt.nii.gz"))[0]
    data = victim.read_bytes()
    victim.write_bytes({"truncated": data[:-20], "zero-byte": b"", "text": b"not an image\n"}[damage])
    code, output = invoke(["preprocess", raw_dataset, out, *SMALL])
    assert code == 0 and "1 done" in output and f"{N_GOOD - 1} up to date" in output, output
    _assert_same_arrays(out, preprocessed)
