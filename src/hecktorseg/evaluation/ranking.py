"""Ranking several runs (prediction folders) the way the HECKTOR 2025 challenge ranks teams.

From each run's summary (see :func:`~hecktorseg.evaluation.scoring_2025.summarize_2025`):

1. ``rank_gtvp``: rank by ``gtvp_mean_dice`` (higher is better);
2. ``rank_gtvn_dsc`` and ``rank_gtvn_f1``: ranks by ``gtvn_dsc_agg`` and
   ``gtvn_f1_agg``; their **Borda count** ``borda_gtvn = rank_gtvn_dsc +
   rank_gtvn_f1`` gives ``rank_gtvn`` (a lower sum is better);
3. ``borda_final = rank_gtvp + rank_gtvn`` gives ``rank_final``.

Ties share the best (smallest) rank and the next rank is skipped
("competition" or *min* ranking: 1, 2, 2, 4), at every step. A NaN score
ranks after every number, and NaNs tie with each other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

__all__ = ["RANKING_COLUMNS", "RunRanking", "competition_rank", "rank_runs_2025"]

RANKING_COLUMNS: tuple[str, ...] = (
    "rank_final",
    "run",
    "gtvp_mean_dice",
    "gtvn_dsc_agg",
    "gtvn_f1_agg",
    "rank_gtvp",
    "rank_gtvn_dsc",
    "rank_gtvn_f1",
    "borda_gtvn",
    "rank_gtvn",
    "borda_final",
)
"""The columns of ``ranking.csv``, in order."""


@attrs.frozen
class RunRanking:
    """One run's scores and ranks (see :mod:`hecktorseg.evaluation.ranking` for the rules)."""

    run: str
    gtvp_mean_dice: float
    gtvn_dsc_agg: float
    gtvn_f1_agg: float
    rank_gtvp: int
    rank_gtvn_dsc: int
    rank_gtvn_f1: int
    borda_gtvn: int
    rank_gtvn: int
    borda_final: int
    rank_final: int

    def row(self) -> dict[str, Any]:
        """The ``ranking.csv`` row (keys :data:`RANKING_COLUMNS`)."""
        return {k: getattr(self, k) for k in RANKING_COLUMNS}


def competition_rank(values: Sequence[float], *, higher_is_better: bool = True) -> list[int]:
    """Ranks 1..n with ties sharing the smallest rank (1, 2, 2, 4); NaN ranks last (NaNs tie).

    Parameters
    ----------
    values
        One score per run.
    higher_is_better
        Rank the largest value first (scores) or the smallest (Borda sums).
    """

    def key(v: float) -> float:
        if math.isnan(v):
            return math.inf
        return -v if higher_is_better else v

    keys = [key(float(v)) for v in values]
    return [1 + sum(1 for other in keys if other < k) for k in keys]


def _score(summary: Mapping[str, Any], key: str, run: str) -> float:
    if key not in summary:
        raise KeyError(f"summary of run {run!r} has no {key!r}; rank summaries of the 2025/2026 rules")
    value = summary[key]
    return math.nan if value is None else float(value)


def rank_runs_2025(summaries: Mapping[str, Mapping[str, Any]]) -> list[RunRanking]:
    """Rank runs by the HECKTOR 2025 rules from their summaries.

    Parameters
    ----------
    summaries
        Run name → its summary (``gtvp_mean_dice``, ``gtvn_dsc_agg``,
        ``gtvn_f1_agg``; ``None`` stands for NaN).

    Returns
    -------
    list[RunRanking]
        One entry per run, ordered by ``rank_final`` (then by the input order).
    """
    runs = list(summaries)
    gtvp = [_score(summaries[r], "gtvp_mean_dice", r) for r in runs]
    dsc = [_score(summaries[r], "gtvn_dsc_agg", r) for r in runs]
    f1 = [_score(summaries[r], "gtvn_f1_agg", r) for r in runs]
    rank_gtvp = competition_rank(gtvp)
    rank_dsc = competition_rank(dsc)
    rank_f1 = competition_rank(f1)
    borda_gtvn = [a + b for a, b in zip(rank_dsc, rank_f1, strict=True)]
    rank_gtvn = competition_rank(borda_gtvn, higher_is_better=False)
    borda_final = [a + b for a, b in zip(rank_gtvp, rank_gtvn, strict=True)]
    rank_final = competition_rank(borda_final, higher_is_better=False)
    table = [
        RunRanking(
            run=runs[i],
            gtvp_mean_dice=gtvp[i],
            gtvn_dsc_agg=dsc[i],
            gtvn_f1_agg=f1[i],
            rank_gtvp=rank_gtvp[i],
            rank_gtvn_dsc=rank_dsc[i],
            rank_gtvn_f1=rank_f1[i],
            borda_gtvn=borda_gtvn[i],
            rank_gtvn=rank_gtvn[i],
            borda_final=borda_final[i],
            rank_final=rank_final[i],
        )
        for i in range(len(runs))
    ]
    return sorted(table, key=lambda r: r.rank_final)  # stable: ties keep the input order
