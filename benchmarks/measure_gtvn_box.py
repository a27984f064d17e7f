"""Measurement: how much of GTVp and GTVn the head-and-neck box holds, per box height.

Makes ``--cases`` HECKTOR 2025 phantoms (GTVp + 0–4 nodes at neck levels II–IV), places the
box from the brain on PET exactly as ``hecktorseg preprocess`` does (``box_source: pet``), for
box heights of 144 to 208 mm (x and y stay 144 mm, the top stays 30 mm above the brain's lowest
point), and counts the label voxels inside (:func:`hecktorseg.preprocessing.count_label_voxels`).
The default grid for GTVp + GTVn layouts (:data:`hecktorseg.preprocessing.GTVN_SIZE`) is the
smallest height, in steps of 16 mm, that holds at least 99.5 % of the GTVn voxels.

    python benchmarks/measure_gtvn_box.py             # 96 full-size phantoms (about a minute)
    python benchmarks/measure_gtvn_box.py --quick     # 8 tiny phantoms (seconds, smoke run)
"""

from __future__ import annotations

import argparse

from hecktorseg.data.synthetic import SyntheticConfig, make_phantom, synthetic_patient_ids
from hecktorseg.preprocessing import GTVN_SIZE, PreprocessConfig, box_from_pet, count_label_voxels

HEIGHTS_MM = (144, 160, 176, 192, 208)
TARGET = 0.995


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=96, help="Number of phantoms.")
    parser.add_argument("--seed", type=int, default=0, help="Dataset seed.")
    parser.add_argument("--quick", action="store_true", help="8 tiny phantoms.")
    args = parser.parse_args()
    n, config = (8, SyntheticConfig.tiny()) if args.quick else (args.cases, SyntheticConfig())
    inside = {h: {1: 0, 2: 0} for h in HEIGHTS_MM}
    total = {1: 0, 2: 0}
    for pid in synthetic_patient_ids(n, "2025"):
        phantom = make_phantom(pid, seed=args.seed, config=config, with_nodes=True, node_model="neck_levels")
        for height in HEIGHTS_MM:
            pre = PreprocessConfig(size=(144, 144, height))
            counts, lost = count_label_voxels(phantom.label, box_from_pet(phantom.pet, pre))
            for value in (1, 2):
                inside[height][value] += counts.get(value, 0) - lost.get(value, 0)
                if height == HEIGHTS_MM[0]:
                    total[value] += counts.get(value, 0)
    print(f"{n} phantoms: {total[1]} GTVp and {total[2]} GTVn voxels")
    print("height_mm  GTVp_inside  GTVn_inside")
    chosen = None
    for height in HEIGHTS_MM:
        f1, f2 = (inside[height][v] / max(total[v], 1) for v in (1, 2))
        print(f"{height:9d}  {f1:11.1%}  {f2:11.1%}")
        if chosen is None and f2 >= TARGET:
            chosen = height
    print(f"smallest height holding >= {TARGET:.1%} of GTVn: {chosen} mm (GTVN_SIZE: {GTVN_SIZE})")


if __name__ == "__main__":
    main()
