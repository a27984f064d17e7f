"""The end-to-end demo: synthetic data → preprocessing → training → prediction → scoring → report.

:func:`run_demo` is what ``hecktorseg demo`` runs. It needs no data and no GPU:
it generates HECKTOR 2020-style PET/CT phantoms, preprocesses them onto a
coarse 32³ grid (4.5 mm voxels over the 144 mm box), trains a small SE-norm
U-Net for a few minutes on the CPU, predicts the held-out phantoms back on
their original CT grids, scores them with the official 2020 rules and writes
``report.md`` with the scores and pictures, and a table of every setting in
which the demo departs from the paper (:func:`departures_from_paper`): its
Dice is a phantom figure, not comparable with the paper's.

``edition="2025"`` (or ``"2026"``, ``hecktorseg demo --edition 2025``) runs today's task
instead: phantoms in the 2025/2026 layout with a primary tumour (GTVp, label 1) and 0–4
lymph nodes (GTVn, label 2), a finer grid that is 1.5 times taller (48×48×80 voxels of 3 mm:
the box reaches down to the neck nodes, and a node is a few voxels across), a model with 3
outputs (background / GTVp / GTVn, chosen from the data) trained with the GTVp + GTVn loss
defaults (:data:`hecktorseg.training.classes.LOSS_DEFAULTS`), in bf16 where the CPU computes
it natively, masks with labels 0/1/2 on the CT grids after the GTVn post-processing, and the
2025 scores (GTVp mean Dice, GTVn aggregated Dice, GTVn aggregated F1 of lesion detection);
the pictures draw GTVp and GTVn in their own colours. :data:`DEMO_RECIPES` holds each task's
grid and learning rate.
"""

from __future__ import annotations

from hecktorseg.demo.report import departures_from_paper
from hecktorseg.demo.run import (
    DEMO_EDITIONS,
    DEMO_RECIPES,
    DemoConfig,
    DemoRecipe,
    DemoResult,
    StageCallback,
    run_demo,
)

__all__ = [
    "DEMO_EDITIONS",
    "DEMO_RECIPES",
    "DemoConfig",
    "DemoRecipe",
    "DemoResult",
    "StageCallback",
    "departures_from_paper",
    "run_demo",
]
