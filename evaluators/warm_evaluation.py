"""The run process's handles on one warm evaluation (`evaluators.warm_pool`): the judge's
process a zygote forked (`RemoteChild`, what `sandbox._supervise` needs of a child), the
candidate's (`WarmCandidate`), and the check that no process of their throw-away uids is left.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evaluators.candidate_sandbox import OutputReader, merge_output
from evaluators.sandbox_common import SandboxLimits, SandboxOutcome, kill_leftovers
from evaluators.tree_limits import TreeCgroup, explain
from evaluators.warm_fork import SETUP_FAILED


class RemoteChild:
    """What `sandbox._supervise` needs of a child process, for an evaluation the zygote forked:
    its output pipes, and its exit code read from the status socket."""

    def __init__(self, out_fd: int, err_fd: int, status: socket.socket):
        self.stdout = os.fdopen(out_fd, "rb", buffering=0)
        self.stderr = os.fdopen(err_fd, "rb", buffering=0)
        self.status = status
        self.returncode: int | None = None
        self.lost = False  # the zygote died before it reported an exit code
        self.setup_error = ""  # why the evaluation's set-up failed (exit code SETUP_FAILED)

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                data = self.status.recv(4096, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return None
            except OSError:
                data = b""
            if data:
                report = json.loads(data)
                self.returncode = int(report["returncode"])
                self.setup_error = str(report.get("reason") or "")
            else:
                self.lost, self.returncode = True, -9
        return self.returncode

    def kill(self, _proc: Any = None) -> None:
        """The wall-clock limit: the zygote SIGKILLs the evaluation (its PID namespace with it)."""
        try:
            self.status.send(b"kill")
        except OSError:
            pass
        deadline = time.monotonic() + 10
        while self.poll() is None and time.monotonic() < deadline:
            self.status.settimeout(max(deadline - time.monotonic(), 0.001))
            try:  # wait for the report without polling; poll() then reads it
                self.status.recv(1, socket.MSG_PEEK)
            except OSError:
                pass
            self.status.settimeout(None)

    def close(self) -> None:
        self.stdout.close()
        self.stderr.close()
        self.status.close()


class WarmCandidate:
    """A candidate's process forked by a candidate zygote for one evaluation."""

    def __init__(self, status: socket.socket, reader: OutputReader, lease: Any,
                 host_dir: Path | None, token: str, *, finish: Callable[[], None],
                 cgroup: TreeCgroup | None, memory_mb: int | None):
        self.status, self.reader, self.lease = status, reader, lease
        self.host_dir, self.token = host_dir, token
        self._finish, self.cgroup, self.memory_mb = finish, cgroup, memory_mb
        self.uid: int | None = lease.uid if lease else None
        self._stopped = self._cleaned = self._finished = False
        self.setup_error = ""  # why its set-up failed, when it did

    def stop(self, result: dict | None = None) -> None:
        """Once the judge is done: the candidate's host ends on the closed channel; the zygote
        kills what is left of its PID namespace on our word, and reports its exit. A `result`
        that failed of a crash becomes a memory failure when the kernel killed a process of
        the candidate's cgroup for memory."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self.status.send(b"kill")
            self.status.settimeout(10)
            report = json.loads(self.status.recv(4096) or b"{}")  # the PID namespace is gone
            if report.get("returncode") == SETUP_FAILED:
                self.setup_error = str(report.get("reason") or "")
        except (OSError, ValueError):
            pass  # the zygote is gone, and its forks with it
        self.status.close()
        self.reader.join(5.0)
        explain(result, self.cgroup, self.memory_mb)

    def clean_up(self, with_processes: set[int] | None = None) -> None:
        """After `stop`: kill what is left under its uid (`with_processes`: the uids found
        with processes, when the caller looked already) and free its uid."""
        if self._cleaned:
            return
        self._cleaned = True
        if self.uid is not None:
            found = (uids_with_processes({self.uid}) if with_processes is None
                     else with_processes)
            if self.uid in found:
                kill_leftovers(self.token, -1, self.uid)
        if self.host_dir is not None:
            shutil.rmtree(self.host_dir, ignore_errors=True)
        if self.lease:
            self.lease.release()

    def finish(self) -> None:
        """Free its cgroup and have its zygote prepare the next evaluation (once)."""
        if not self._finished:
            self._finished = True
            self._finish()


def conclude(outcome: SandboxOutcome, child: RemoteChild, started: WarmCandidate | None,
             cgroup: TreeCgroup | None, limits: SandboxLimits) -> None:
    """The outcome of a warm evaluation once the judge's process ended: the candidate's
    stopped and its output added, the warm path's own ways to fail said, a crash the kernel's
    memory limit caused called so."""
    if started is not None:
        started.stop(outcome.result)
        merge_output(outcome, started.reader)
        if started.setup_error:
            outcome.stderr += (f"\nwarm sandbox: the candidate's sandbox could not start: "
                               f"{started.setup_error}")
    if child.lost:
        outcome.stderr += ("\nwarm sandbox: the warm interpreter ended during this "
                           "evaluation; the next one starts a fresh interpreter")
        outcome.result = None
    elif child.returncode == SETUP_FAILED:
        outcome.stderr = ("could not start the sandbox: "
                          f"{child.setup_error or outcome.stderr.strip()}")
    explain(outcome.result, cgroup, limits.memory_mb)


def sweep_uids(outcome: SandboxOutcome, token: str, started: WarmCandidate | None,
               cgroup: TreeCgroup | None = None) -> None:
    """Kill what is left under the evaluation's throw-away uids (the judge's, `outcome.uid`,
    and the candidate's), and free the candidate's. Cannot happen: each PID namespace ended
    with its first process (the kernel reaps every member before that one is reaped). Belt
    and braces, checked by the uids: where the judge's and the candidate's processes ran in
    cgroups of their own and both are empty now, no process of those uids is left anywhere
    (below); otherwise every process on the machine is looked at (a stat each, one pass)."""
    uid = outcome.uid
    uids = {u for u in (uid, started and started.uid) if u}
    found = set() if _cgroups_empty(cgroup, started) else uids_with_processes(uids)
    if uid in found:
        outcome.leftovers_killed = kill_leftovers(token, -1, uid)
    if started is not None:
        started.clean_up(found)


def _cgroups_empty(cgroup: TreeCgroup | None, started: WarmCandidate | None) -> bool:
    """Whether the judge's cgroup (and the candidate's, when there is one) hold no process.
    Empty cgroups mean empty uids: a throw-away uid is leased to this evaluation alone, its
    first process is in the evaluation's cgroup before it runs anything (born there, or moved
    in before the harness starts) and every process it starts is born where its parent is.
    None of them can leave: moving a process needs write access to another cgroup's
    `cgroup.procs` (files of our uid, not theirs) and they hold no descriptor of one."""
    if cgroup is None or not cgroup.is_empty():
        return False
    if started is None or started.uid is None:
        return True
    return started.cgroup is not None and started.cgroup.is_empty()


def uids_with_processes(uids: set[int]) -> set[int]:
    """Which of `uids` have a process on this machine (one stat per process, one pass)."""
    found: set[int] = set()
    if not uids:
        return found
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                uid = entry.stat().st_uid
            except OSError:
                continue
            if uid in uids:
                found.add(uid)
    return found
