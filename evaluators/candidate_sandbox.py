"""The candidate's own sandbox for one evaluation on the judge/candidate API, run next to the
judge's: a second sandboxed process (cold: its own `python -m evaluators.candidate_host` under
the level's sandbox command; warm: a fork of the candidate zygote, see `warm_pool`), under a
throw-away uid of its own, holding the candidate's end of the one channel.

Its output is read here, on a thread, while the judge runs (a candidate that floods its
stdout must not block on a full pipe while the judge waits for its answer), kept up to the
stage's output cap and added to the stage's stdout/stderr.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from evaluators import isolation
from evaluators.candidate_host import FD_VAR
from evaluators.sandbox_common import (
    Capture,
    SandboxLimits,
    SandboxOutcome,
    drops_uid,
    environment,
    kill_leftovers,
)
from evaluators.sandbox_dirs import work_dir_prefix
from evaluators.tree_limits import TreeCgroup, explain
from evaluators.uid_leases import UidLease
from evaluators.view import View

_STOP_WAIT_S = 5.0


class OutputReader:
    """Drains the candidate's stdout and stderr pipes into capped captures on a thread."""

    def __init__(self, out_fd: int, err_fd: int, limit: int):
        self.out, self.err = Capture(limit), Capture(limit)
        self._thread = threading.Thread(target=self._pump, args=(out_fd, err_fd),
                                        name="candidate-output", daemon=True)
        self._thread.start()

    def _pump(self, out_fd: int, err_fd: int) -> None:
        import selectors

        sel = selectors.DefaultSelector()
        for fd, capture in ((out_fd, self.out), (err_fd, self.err)):
            sel.register(fd, selectors.EVENT_READ, capture)
        try:
            while sel.get_map():
                for key, _ in sel.select():
                    chunk = os.read(key.fd, 1 << 16)
                    if chunk:
                        key.data.feed(chunk)
                    else:
                        sel.unregister(key.fd)
                        os.close(key.fd)
        finally:
            for key in list(sel.get_map().values()):
                os.close(key.fd)
            sel.close()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def merge_output(outcome: SandboxOutcome, reader: OutputReader | None) -> None:
    """Add the candidate's output to the stage's (the judge's first)."""
    if reader is None:
        return
    for name, capture in (("stdout", reader.out), ("stderr", reader.err)):
        if capture.total:
            setattr(outcome, name, getattr(outcome, name) + capture.text())
            setattr(outcome, f"{name}_bytes", getattr(outcome, f"{name}_bytes") + capture.total)


class ColdCandidate:
    """The candidate's sandboxed process for one cold evaluation."""

    def __init__(self, *, problem_dir: Path, code: str, limits: SandboxLimits, level: str,
                 view: View, evaluator_file: str, extra_env: dict[str, str] | None,
                 channel: socket.socket):
        self.work_dir: Path | None = Path(tempfile.mkdtemp(prefix=work_dir_prefix()))
        self.lease: Any = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.reader: OutputReader | None = None
        self.cgroup: TreeCgroup | None = None
        self.memory_mb = limits.memory_mb
        self.token = secrets.token_hex(12)
        try:
            self._start(problem_dir, code, limits, level, view, evaluator_file, extra_env,
                        channel)
        except BaseException:
            self.stop()
            raise

    def _start(self, problem_dir: Path, code: str, limits: SandboxLimits, level: str,
               view: View, evaluator_file: str, extra_env: dict[str, str] | None,
               channel: socket.socket) -> None:
        assert self.work_dir is not None
        program = self.work_dir / "program.py"
        program.write_text(code)
        program.chmod(0o644)
        if drops_uid(level, problem_dir, view, self.work_dir):
            self.lease = UidLease()
        uid = self.lease.uid if self.lease else None
        if uid is not None and level != "bwrap":
            os.chown(self.work_dir, uid, uid)
        self.work_dir.chmod(0o700 if uid is None or level != "bwrap" else 0o755)
        env = environment(self.token, self.work_dir, limits, -1, uid, evaluator_file,
                                   extra_env)
        for key in ("EVOLVE_RESULT_FD", "EVOLVE_EVALUATOR_FILE", "EVOLVE_STAGE_DEADLINE"):
            env.pop(key, None)
        # The candidate's tree gets the stage's memory and process limits in a cgroup of its
        # own (its host moves the worker in before any candidate code); the seccomp filter is
        # in `env` (sandbox_common.environment), loaded by the host before it forks the worker.
        self.cgroup = TreeCgroup.create(limits.memory_mb, limits.max_processes)
        if self.cgroup is not None:
            env.update(self.cgroup.environment())
        prefix, prefix_env = isolation.command_prefix(
            level, view=view, work_dir=self.work_dir, program=program,
            work_dir_mb=max(64, 2 * limits.max_file_mb), devices=())
        env.update(prefix_env)
        fd = channel.fileno()
        env[FD_VAR] = str(fd)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [*prefix, sys.executable, "-s", "-m", "evaluators.candidate_host", str(fd),
                 str(program)],
                stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w,
                pass_fds=[fd, *(self.cgroup.fds if self.cgroup else ())], env=env,
                cwd=self.work_dir, start_new_session=True)
        except OSError:
            for end in (out_r, err_r):
                os.close(end)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
            if self.cgroup is not None:
                self.cgroup.close_fds()
        self.reader = OutputReader(out_r, err_r, limits.max_output_kb * 1024)

    def stop(self, result: dict | None = None) -> None:
        """Kill the candidate's sandbox and everything it left; keep its output. A `result`
        that failed of a crash becomes a memory failure when the kernel killed a process of
        the candidate's cgroup for memory."""
        if self.work_dir is None:
            return  # stopped already
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    self.proc.wait(timeout=0.05)  # it ends by itself once the judge is done
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    self.proc.wait(timeout=10)
        if self.cgroup is not None:
            explain(result, self.cgroup, self.memory_mb)
            self.cgroup.release()
            self.cgroup = None
        if self.proc is not None:
            kill_leftovers(self.token, self.proc.pid,
                                   self.lease.uid if self.lease else None)
        if self.reader is not None:
            self.reader.join(_STOP_WAIT_S)
        shutil.rmtree(self.work_dir, ignore_errors=True)
        self.work_dir = None
        if self.lease is not None:
            self.lease.release()
            self.lease = None
