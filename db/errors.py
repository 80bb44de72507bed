"""Errors of the archive."""

from __future__ import annotations


class ArchiveError(RuntimeError):
    """The archive cannot do what was asked; the message says why and what to do."""


class ArchiveVersionError(ArchiveError):
    """The archive was written by a schema version this code does not read."""


class ArchiveUnreachable(ArchiveError):
    """The database cannot be opened: server down, wrong password, no such database."""
