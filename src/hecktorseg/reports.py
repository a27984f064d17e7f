"""What a batch run did: the record both batch runners return.

:func:`hecktorseg.preprocessing.preprocess_dataset` and
:func:`hecktorseg.inference.predict_dataset` each return a :class:`BatchReport`; the
fields only one of them fills keep their empty defaults in the other's report.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import attrs

__all__ = ["BatchReport"]


@attrs.frozen
class BatchReport:
    """What a batch run (preprocessing or prediction of a whole dataset) did.

    Attributes
    ----------
    output_dir
        The output folder.
    done
        Patient ids processed in this run.
    skipped
        Patient ids whose outputs were already up to date (not overwritten).
    failed
        Reason per patient id that failed.
    warnings
        Problems that did not fail a case (e.g. a manifest mixing configurations).
    manifest_path
        Preprocessing: ``OUT/manifest.json`` (the merged index), or ``None`` when no case is
        complete; always ``None`` for prediction.
    outside_box
        Preprocessing: per patient id processed in this run whose label voxels fell partly
        outside the box, label value → voxels lost (also logged as a warning).
    seconds
        Prediction: wall-clock time per predicted case (same order as ``done``).
    """

    output_dir: Path
    done: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    failed: Mapping[str, str] = attrs.field(factory=dict)
    warnings: tuple[str, ...] = ()
    manifest_path: Path | None = None
    outside_box: Mapping[str, Mapping[int, int]] = attrs.field(factory=dict)
    seconds: tuple[float, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether no case failed."""
        return not self.failed

    @property
    def total(self) -> int:
        """Number of cases this run was responsible for."""
        return len(self.done) + len(self.skipped) + len(self.failed)
