"""Suite-wide test settings: headless plotting, CPU threads, seeds and markers.

Area-specific fixtures (tiny synthetic datasets, checkpoints, …) live in
``tests/<area>/conftest.py``; here are only global things and the fixtures that
several areas share (``preprocessed_dir``: training and the ``train`` command).

The suite runs with ``--import-mode=importlib`` (pyproject.toml), which does not
put test folders on ``sys.path``; the helper modules that tests import by name
(``pre_phantoms``, ``robust_helpers``, ``dicom_helpers``, ``review_cohort``) are made importable below.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Helper modules imported by name from several test folders (importlib mode adds no test folder to sys.path).
_TESTS = Path(__file__).resolve().parent
# pre_phantoms.py, robust_helpers.py, dicom_helpers.py, review_cohort.py
for _helpers in (_TESTS / "preprocessing", _TESTS / "robustness", _TESTS / "dicom", _TESTS / "review"):
    if str(_helpers) not in sys.path:
        sys.path.insert(0, str(_helpers))

# Plots are written to files, never shown: pick the headless backend before matplotlib loads.
os.environ.setdefault("MPLBACKEND", "Agg")

# Converted inference models (OpenVINO, ONNX) go to a throw-away cache, never the user's.
os.environ.setdefault("HECKTORSEG_CACHE_DIR", tempfile.mkdtemp(prefix="hecktorseg-test-cache-"))

# Under pytest-xdist every worker is its own process; letting each one start as many
# BLAS/OpenMP threads as there are cores oversubscribes the CPU and slows everything down.
# These variables must be set before torch / numpy start their thread pools.
_XDIST_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
if _XDIST_WORKERS > 1:
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, "1")


def _torch_threads() -> int:
    """Intra-op threads for torch in this process: one per xdist worker, else all cores (at most 4)."""
    if _XDIST_WORKERS > 1:
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def _configure_torch() -> None:
    """Set torch's thread counts, but only if some test already imported torch (it is slow to load)."""
    torch = sys.modules.get("torch")
    if torch is None or getattr(_configure_torch, "done", False):
        return
    torch.set_num_threads(_torch_threads())
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once parallel work started: harmless
        pass
    _configure_torch.done = True  # type: ignore[attr-defined]


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers used across the suite (``--strict-markers`` is on)."""
    config.addinivalue_line("markers", "gpu: needs a CUDA device; skipped when none is available")
    config.addinivalue_line("markers", "network: needs network access; skipped unless HECKTORSEG_NETWORK=1")
    if os.environ.get(FAKE_CUDA_ENV) == "1":
        import torch

        _pretend_cuda(pytest.MonkeyPatch(), torch)  # for the whole session (see FAKE_CUDA_ENV)


FAKE_CUDA_ENV = "HECKTORSEG_FAKE_CUDA"
"""Set to 1 to run tests as if CUDA were visible (an audit on a CPU-only machine).

``torch.cuda.is_available()`` then answers True for the whole session, so every ``"auto"``
device resolves to CUDA; a test that silently relies on the auto device being the CPU then
fails with torch's "not compiled with CUDA" error, exactly where it would pick the GPU on a
real CUDA machine. (``gpu``-marked tests are still skipped: they need a real device.)
"""


def _pretend_cuda(monkeypatch: pytest.MonkeyPatch, torch: object) -> None:
    """Make torch report one CUDA device (compute capability 9.0) without touching any GPU."""
    cuda = torch.cuda  # type: ignore[attr-defined]
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "device_count", lambda: 1)
    monkeypatch.setattr(cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(cuda, "get_device_name", lambda *a, **k: "Pretend GPU")
    monkeypatch.setattr(cuda, "get_device_capability", lambda *a, **k: (9, 0))


@pytest.fixture
def cuda_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test runs as if one CUDA device were visible (device-choice logic only: nothing runs on it)."""
    import torch

    _pretend_cuda(monkeypatch, torch)


@pytest.fixture
def cuda_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test runs as if no CUDA device were visible, whatever the machine has."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``gpu`` tests without CUDA and ``network`` tests unless explicitly enabled."""
    if any(item.get_closest_marker("gpu") for item in items):
        import torch

        if not torch.cuda.is_available() or os.environ.get(FAKE_CUDA_ENV) == "1":
            skip_gpu = pytest.mark.skip(reason="no CUDA device")
            for item in items:
                if item.get_closest_marker("gpu"):
                    item.add_marker(skip_gpu)
    if os.environ.get("HECKTORSEG_NETWORK") != "1":
        skip_net = pytest.mark.skip(reason="network tests need HECKTORSEG_NETWORK=1")
        for item in items:
            if item.get_closest_marker("network"):
                item.add_marker(skip_net)


@pytest.fixture(autouse=True)
def _seed_everything() -> Iterator[None]:
    """Give every test the same seeds (Python, NumPy and — if loaded — torch) and sane torch threads."""
    random.seed(0)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(0)
    _configure_torch()
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(0)
    yield
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


N_CASES = 8


def make_preprocessed(root: Path, n_cases: int = N_CASES, seed: int = 0) -> Path:
    """Write ``n_cases`` synthetic phantoms and preprocess them to 32³ voxels of 4.5 mm."""
    from hecktorseg.data.synthetic import write_synthetic_dataset
    from hecktorseg.preprocessing import PreprocessConfig, preprocess_dataset

    raw = root / "raw"
    out = root / "pre"
    write_synthetic_dataset(raw, n_cases=n_cases, seed=seed)
    report = preprocess_dataset(raw, out, PreprocessConfig(spacing=(4.5, 4.5, 4.5), size=(32, 32, 32)))
    assert not report.failed, report.failed
    return out


@pytest.fixture(scope="session")
def preprocessed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A preprocessed dataset of 8 synthetic cases (two per centre: CHGJ, CHMR, CHUM, CHUS)."""
    return make_preprocessed(tmp_path_factory.mktemp("training-data"))
