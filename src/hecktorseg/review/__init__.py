"""Reviewing a cohort of predictions in one offline page: :func:`write_review`.

- :mod:`~hecktorseg.review.review`: the driver (:func:`write_review`) and its records.
- :mod:`~hecktorseg.review.flags`: what is flagged, as a table of :class:`ReviewFlag` records
  (:data:`REVIEW_FLAGS`), with the thresholds in :class:`ReviewSettings`.
- :mod:`~hecktorseg.review.case_data`: one case's statistics and viewer data.
- :mod:`~hecktorseg.review.page`: ``index.html``, its script and style (``assets/``, plain
  JavaScript shipped in the package) and the per-case data files.
"""

from hecktorseg.review.case_data import CT_CODE_HU
from hecktorseg.review.flags import REVIEW_FLAGS, CaseStats, ReviewFlag, ReviewSettings, flags_of
from hecktorseg.review.review import ReviewResult, ReviewRow, write_review

__all__ = [
    "CT_CODE_HU",
    "REVIEW_FLAGS",
    "CaseStats",
    "ReviewFlag",
    "ReviewResult",
    "ReviewRow",
    "ReviewSettings",
    "flags_of",
    "write_review",
]
