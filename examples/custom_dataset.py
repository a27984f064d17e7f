"""Preprocess your own PET/CT that follow no HECKTOR layout and come without a box table.

hecktorseg finds datasets laid out like HECKTOR 2020/2021/2022 or nnU-Net by
itself (:func:`hecktorseg.io.discover_cases`). Files named any other way are
described by hand with :class:`hecktorseg.io.Case` records: an identifier, a
centre name, the CT and PET paths and, if you have one, a label map on the CT
grid. Without a box table the head-and-neck box is found from the PET
(``box_source="pet"``): the brain is located as the largest high-uptake blob
in the upper part of the PET, and a box of ``spacing × size`` mm is hung below
it (see the ``brain_*`` and ``box_offset_mm`` settings of
:class:`hecktorseg.preprocessing.PreprocessConfig`).

This script stands in for "your data" with two synthetic phantoms written as::

    OUT/my_data/patient_a/CT.nii.gz, PET.nii.gz, GTV.nii.gz   (with a contour)
    OUT/my_data/patient_b/CT.nii.gz, PET.nii.gz               (without)

then preprocesses them with :func:`hecktorseg.preprocessing.preprocess_dataset`,
reports each box and where it came from (and, since the phantoms' anatomy is
known, whether the tumour lies inside the box and how far the box is from the
phantom's own 2020-style box, which follows a different placement rule), writes the boxes found as a
reusable ``boxes.csv`` and draws each preprocessed case with
:func:`hecktorseg.evaluation.visualize_case` (``OUT/pictures/<id>.png``).

Run it with::

    python examples/custom_dataset.py --out runs/custom            # the paper's 144³ grid at 1 mm
    python examples/custom_dataset.py --quick                      # tiny phantoms, 32³ at 4.5 mm
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np

from hecktorseg.data import Phantom, SyntheticConfig, make_phantom
from hecktorseg.evaluation import visualize_case
from hecktorseg.io import BBox, Case, write_bbox_table, write_image
from hecktorseg.preprocessing import PreprocessConfig, preprocess_dataset, read_manifest

logger = logging.getLogger("custom_dataset")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the example."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a new temp folder)")
    parser.add_argument("--quick", action="store_true", help="tiny phantoms and a 32³ grid of 4.5 mm")
    parser.add_argument("--seed", type=int, default=0, help="seed of the phantoms")
    return parser.parse_args(argv)


def write_my_data(root: Path, *, quick: bool, seed: int) -> tuple[list[Case], dict[str, Phantom]]:
    """Write two phantoms under arbitrary names and describe them with hand-made Case records.

    Returns the cases and, for comparison only, the phantoms (true box and tumour position).
    """
    config = SyntheticConfig.tiny() if quick else SyntheticConfig()
    cases: list[Case] = []
    truth: dict[str, Phantom] = {}
    for index, name in enumerate(("patient_a", "patient_b")):
        phantom = make_phantom(name, seed=seed + index, config=config)
        folder = root / name
        write_image(phantom.ct, folder / "CT.nii.gz")
        write_image(phantom.pet, folder / "PET.nii.gz")
        label_path = None
        if name == "patient_a":  # contours are optional
            label_path = folder / "GTV.nii.gz"
            write_image(phantom.label, label_path)
        cases.append(
            Case(
                patient_id=name,
                centre="my_hospital",
                ct_path=folder / "CT.nii.gz",
                pet_path=folder / "PET.nii.gz",
                label_path=label_path,
            )
        )
        truth[name] = phantom
    return cases, truth


def main(argv: list[str] | None = None) -> int:
    """Write, preprocess and draw the custom cases; returns the exit code."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out: Path = args.out if args.out is not None else Path(tempfile.mkdtemp(prefix="hecktorseg-custom-"))
    out.mkdir(parents=True, exist_ok=True)

    cases, truth = write_my_data(out / "my_data", quick=args.quick, seed=args.seed)
    logger.info("wrote %d cases under %s", len(cases), out / "my_data")

    if args.quick:
        config = PreprocessConfig(spacing=(4.5, 4.5, 4.5), size=(32, 32, 32), box_source="pet")
    else:
        config = PreprocessConfig(box_source="pet")  # the paper's 144³ voxels of 1 mm
    preprocessed = out / "preprocessed"
    report = preprocess_dataset(cases, preprocessed, config, force=True)
    if not report.ok:
        logger.error("preprocessing failed: %s", report.failed)
        return 1

    manifest = read_manifest(preprocessed)
    boxes: dict[str, BBox] = {}
    for pid in manifest.patient_ids:
        entry = manifest.entries[pid]
        boxes[pid] = entry.bbox
        phantom = truth[pid]
        offset = float(np.linalg.norm(np.asarray(entry.bbox.center) - np.asarray(phantom.bbox.center)))
        tumour = np.asarray(phantom.tumour_center_mm)
        inside = bool(np.all(tumour >= entry.bbox.lower) and np.all(tumour <= entry.bbox.upper))
        lower = ", ".join(f"{v:.1f}" for v in entry.bbox.lower)
        upper = ", ".join(f"{v:.1f}" for v in entry.bbox.upper)
        print(f"{pid}: box from {entry.box_source}: ({lower}) .. ({upper}) mm")
        print(f"{pid}: box centre {offset:.1f} mm from the phantom's own box centre")
        print(f"{pid}: tumour centre inside the box: {inside}")
        picture = visualize_case(
            entry.ct_path,
            entry.pet_path,
            entry.label_path,
            None,
            out / "pictures" / f"{pid}.png",
            title=f"{pid} (box from {entry.box_source})",
        )
        print(f"{pid}: picture: {picture}")
    write_bbox_table(out / "boxes.csv", boxes)
    print(f"boxes: {out / 'boxes.csv'}")
    print(f"preprocessed: {preprocessed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
