"""The run archive: SQLAlchemy models and the API the controller writes through."""

from db.archive import Archive
from db.convert import code_hash_of
from db.engine import archive_path
from db.errors import ArchiveError, ArchiveUnreachable, ArchiveVersionError
from db.models import SCHEMA_VERSION
from db.records import CostSummary, Evaluation, Event, LLMCall, Program, Run

__all__ = [
    "SCHEMA_VERSION",
    "Archive",
    "ArchiveError",
    "ArchiveUnreachable",
    "ArchiveVersionError",
    "CostSummary",
    "Evaluation",
    "Event",
    "LLMCall",
    "Program",
    "Run",
    "archive_path",
    "code_hash_of",
]
