"""The sandbox's side of the evaluation cgroup (`evaluators.tree_limits`): moving the
candidate's process into it through the descriptors the run process handed in. Kept apart
(and light: only `os` and `json`) because every harness imports it at start-up.

Moving a process into a cgroup waits for a kernel grace period (milliseconds), so the harness
overlaps it with the candidate process's own set-up: its supervisor `admit`s the forked process
while that one loads the evaluator, and the process calls `wait_admitted` just before the first
candidate code. A launcher that starts the candidate's process directly calls
`join_from_environment` in it instead.
"""

from __future__ import annotations

import json
import os

FDS_VAR = "EVOLVE_CGROUP_FDS"


def take_from_environment() -> list[int]:
    """In the sandbox's supervising process: the descriptors the run process handed in."""
    raw = os.environ.pop(FDS_VAR, None)
    return [int(fd) for fd in json.loads(raw)] if raw else []


def admit(pid: int, fds: list[int], admitted_w: int | None, *, keep: bool = False) -> None:
    """Move the candidate's process `pid` (forked, not yet running candidate code) into the
    evaluation's cgroup, close the descriptors (unless `keep`: a supervisor that starts more
    such processes later) and tell it (b"1"; b"0" when the move failed: it must not run
    then)."""
    ok = True
    for fd in fds:
        try:
            os.write(fd, str(pid).encode())
        except OSError:
            ok = False
        finally:
            if not keep:
                os.close(fd)
    if admitted_w is not None:
        try:
            os.write(admitted_w, b"1" if ok else b"0")
        finally:
            os.close(admitted_w)


def wait_admitted(admitted_r: int | None) -> None:
    """In the candidate's process, before any candidate code: wait until `admit` moved it."""
    if admitted_r is None:
        return
    try:
        answer = os.read(admitted_r, 1)
    finally:
        os.close(admitted_r)
    if answer != b"1":
        raise RuntimeError("could not join the evaluation's cgroup; not running the program "
                           "without its memory and process limits")


def close(fds: list[int], *others: int | None) -> None:
    for fd in [*fds, *others]:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def join_from_environment() -> None:
    """For a launcher that starts the candidate's process directly: move this process into
    the evaluation's cgroup(s) before any candidate code runs, then close the descriptors."""
    for fd in take_from_environment():
        try:
            os.write(fd, b"0")  # "0": the writing process itself
        finally:
            os.close(fd)
