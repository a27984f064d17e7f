"""Choosing a patient's CT, attenuation-corrected PET and RTSTRUCT among the series of an index.

The rules are the :data:`~hecktorseg.dicom.rules.SERIES_SKIP_RULES` records; where more than
one candidate is left, the patient fails with a message listing them, and ``ct_series=`` /
``pet_series=`` (UIDs) decide.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs
import pydicom

from hecktorseg.dicom.index import SeriesEntry
from hecktorseg.dicom.rules import SERIES_SKIP_RULES
from hecktorseg.errors import DataError

__all__ = ["SeriesChoice", "select_series", "skip_reason"]


@attrs.frozen
class SeriesChoice:
    """The series chosen for one patient.

    Attributes
    ----------
    ct, pet
        The CT and PET series (``pet`` is ``None`` when ``need_pet=False`` and there is none).
    rtstruct
        The RTSTRUCT file referring to the CT series, if any.
    skipped
        UID → reason, for each series a rule skipped.
    """

    ct: SeriesEntry
    pet: SeriesEntry | None
    rtstruct: SeriesEntry | None
    skipped: Mapping[str, str] = attrs.field(factory=dict)


def skip_reason(series: SeriesEntry) -> str | None:
    """The reason of the first skip rule that matches ``series``, or ``None``."""
    f = series.first
    for rule in SERIES_SKIP_RULES:
        if rule.matches(f.modality, f.image_type, f.corrected, f.sop_class_uid):
            return rule.reason
    return None


def _pick(
    pid: str, modality: str, series: Sequence[SeriesEntry], wanted: str | None, skipped: dict[str, str]
) -> SeriesEntry | None:
    if wanted:
        chosen = [s for s in series if s.uid == wanted]
        if not chosen:
            raise DataError(
                f"patient {pid}: no series {wanted}", hint=f"the {modality} series are listed by UID"
            )
        return chosen[0]
    usable = []
    for s in series:
        reason = skip_reason(s)
        if reason is None:
            usable.append(s)
        else:
            skipped[s.uid] = reason
    if len(usable) > 1:
        option = "ct_series=" if modality == "CT" else "pet_series="
        raise DataError(
            f"patient {pid}: {len(usable)} candidate {modality} series: "
            + "; ".join(s.summary() for s in usable),
            hint=f"choose one with {option}UID (or a selection table)",
        )
    return usable[0] if usable else None


def _referenced_series(path: object) -> tuple[str, set[str]]:
    ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["ReferencedFrameOfReferenceSequence"])  # type: ignore[arg-type]
    frames, series = "", set()
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        frames = str(frame.get("FrameOfReferenceUID", ""))
        for study in frame.get("RTReferencedStudySequence", []):
            for item in study.get("RTReferencedSeriesSequence", []):
                series.add(str(item.get("SeriesInstanceUID", "")))
    return frames, series


def select_series(
    pid: str,
    series: Sequence[SeriesEntry],
    *,
    ct_series: str | None = None,
    pet_series: str | None = None,
    need_pet: bool = True,
) -> SeriesChoice:
    """Choose the CT, the attenuation-corrected PET of the same study, and the RTSTRUCT of the CT.

    Raises
    ------
    DataError
        No CT or PET; several candidates; an RTSTRUCT referring to another series or frame of
        reference; several RTSTRUCTs for the CT.
    """
    skipped: dict[str, str] = {}
    cts = [s for s in series if s.modality == "CT"]
    ct = _pick(pid, "CT", cts, ct_series, skipped)
    if ct is None:
        found = ", ".join(f"{s.uid} ({skipped.get(s.uid, s.modality)})" for s in series) or "none"
        raise DataError(f"patient {pid}: no usable CT series (series found: {found})")
    pets = [s for s in series if s.modality == "PT" and (pet_series or s.study_uid == ct.study_uid)]
    pet = _pick(pid, "PT", pets, pet_series, skipped)
    if pet is None and need_pet:
        others = [f"{s.uid} ({skipped.get(s.uid, 'another study')})" for s in series if s.modality == "PT"]
        raise DataError(
            f"patient {pid}: no attenuation-corrected PET series in the CT's study"
            + (f" (PET series found: {', '.join(others)})" if others else ""),
            hint="give pet_series=UID" if others else "the export holds no PET for this patient",
        )
    rtstructs = []
    for s in series:
        if s.modality != "RTSTRUCT" or s.study_uid != ct.study_uid:
            continue
        for entry in s.files:
            frame, refs = _referenced_series(entry.path)
            if ct.uid in refs:
                if frame and ct.first.frame_of_reference_uid and frame != ct.first.frame_of_reference_uid:
                    raise DataError(
                        f"patient {pid}: the RTSTRUCT refers to frame of reference {frame}, "
                        f"the CT is in {ct.first.frame_of_reference_uid}",
                        path=entry.path,
                    )
                rtstructs.append(SeriesEntry(s.uid, (entry,)))
            else:
                skipped[s.uid] = f"RTSTRUCT for another series ({', '.join(sorted(refs)) or 'none named'})"
    if len(rtstructs) > 1:
        raise DataError(
            f"patient {pid}: {len(rtstructs)} RTSTRUCTs refer to the CT series: "
            + "; ".join(str(r.first.path) for r in rtstructs),
            hint="keep one in the export",
        )
    if not rtstructs and any(s.modality == "RTSTRUCT" for s in series):
        reasons = [skipped[s.uid] for s in series if s.modality == "RTSTRUCT" and s.uid in skipped]
        if reasons:
            raise DataError(
                f"patient {pid}: the RTSTRUCT does not refer to the chosen CT series {ct.uid}: {reasons[0]}",
                hint="give ct_series= the series it was drawn on",
            )
    return SeriesChoice(ct=ct, pet=pet, rtstruct=rtstructs[0] if rtstructs else None, skipped=skipped)
