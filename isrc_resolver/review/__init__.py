"""What a person looks at and corrects: the candidates of each answer, the review list of
doubtful rows, and the HTML report of a run. Plain values in and out: the table fronts
(:mod:`isrc_resolver.fronts`) read and write the files."""

from .candidates import CANDIDATE_COLUMNS, candidate_records
from .listing import REVIEW_COLUMNS, Item, Scan, review_records, scan_output
from .page import render_report
from .shown import Kept, describe

__all__ = [
    "CANDIDATE_COLUMNS",
    "REVIEW_COLUMNS",
    "Item",
    "Kept",
    "Scan",
    "candidate_records",
    "describe",
    "render_report",
    "review_records",
    "scan_output",
]
