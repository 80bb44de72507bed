"""Why a run stops before doing useful work: raised by the controller, shown by the CLI as one
line (exit code 1)."""

from __future__ import annotations


class RunCannotWork(Exception):
    """The run cannot produce anything useful (a broken evaluator, an unusable model): it stops
    at once instead of spending its budget on failures. The message names the cause and the fix."""
