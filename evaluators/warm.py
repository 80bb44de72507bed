"""A warm interpreter per run: one pre-imported Python that forks a fresh process per evaluation.

The cold path (`evaluators.sandbox.run_sandboxed`) starts `python -m evaluators.harness` for every
stage of every candidate: interpreter start, site, numpy and the evaluator's own imports, and the
guard's snapshot of the evaluator are paid each time. Here one *zygote* per (problem, level) pays
them once and then only forks.

Why isolation between candidates is not weakened
------------------------------------------------
- The zygote never runs candidate code. It imports the harness, numpy and the problem's
  evaluator (trusted code, as the cold harness does before any candidate) and takes the guard's
  snapshot; then it only receives requests and forks. Every evaluation starts from a
  copy-on-write copy of that pristine state, so module globals, `sys.modules`, environment
  variables, signal handlers, the cwd or the random state a candidate changes die with its own
  process: nothing flows back into the zygote or sideways into a later fork.
- The zygote itself runs inside the level's sandbox command (bubblewrap with the same read-only
  root, hidden home/temp folders and namespaces as a cold evaluation, built by
  `isolation.command_prefix`), and each forked evaluation then enters namespaces of its own,
  nested inside: a new mount namespace (at the bwrap and unshare levels a fresh size-capped
  tmpfs as its work dir and HOME/TMPDIR, a fresh /tmp and /dev/shm; its own /proc), a new PID
  namespace (it cannot see, signal or ptrace the zygote or another evaluation, and when its
  first process ends the kernel kills everything it left), and at the bwrap and unshare levels
  new network and IPC namespaces (no abstract socket, SysV object or POSIX queue outlives it or
  reaches a concurrent evaluation). The seccomp filter, the limits and the uid drop are applied
  after the fork, by the harness, exactly as in the cold path; the evaluation is born in its
  own cgroup (`evaluators.warm_cgroups`). So each evaluation gets the same isolation a cold one
  gets, plus a private PID namespace at every level.
- Creating those namespaces needs CAP_SYS_ADMIN in the zygote, which bubblewrap keeps only when
  run by root (and which the uid drop then removes from the candidate). Elsewhere (not root)
  `supported()` is False and the executor uses the cold path.
- The cascade's stages of one candidate are separate requests, so each stage is its own fork of
  the pristine zygote: nothing the candidate did in one stage is visible to the next stage's
  evaluator.
- The zygote's forks share its hash-randomisation seed (Python fixes it at interpreter start).
  Random streams do not repeat: `random` reseeds itself after a fork, and numpy's global
  generator (which does not) is reseeded from the OS in every fork.
- A candidate cannot reach the zygote (another PID namespace, another uid), but if the zygote
  dies anyway (killed from outside, out of memory), the evaluations it was running fail with a
  crash, it is marked dead, and the next evaluation starts a fresh one.

Two kinds of zygote (`role`): a *judge* zygote imports the problem's evaluator as above; a
*candidate* zygote imports only the candidate's host and worker (`evaluators.candidate_host`)
and never the evaluator, so a candidate's fork holds nothing of the judge's. For a problem on
the judge/candidate API each evaluation is one fork of each, under two uids, joined by one
channel the run process creates (`evaluators.judge_proxy`).

Protocol: the run process holds one end of a SOCK_SEQPACKET pair; each request is one JSON
message with four file descriptors (stdout, stderr, result pipe write ends and a status socket)
and, for a judge whose candidate runs in the other zygote, its end of the channel (a
candidate's request carries its end of the channel in the result's place; `judge_channel` in
the request says a judge's is there), then, where the machine offers cgroups, the evaluation's
`cgroup.procs` files (`tree_limits`).
The zygote hands the request to an evaluation it forked and set up ahead (`warm_fork`; one
it forks there and then when it holds none), and reports the evaluation's exit code on the
status socket (with the reason when its set-up failed); "kill" on that socket (or closing it)
makes the zygote SIGKILL the evaluation, whose PID namespace then dies. A message
{"prepare": settings} (no descriptors) asks it to fork and set up the next evaluation now:
the run process sends it once the last one is over and the zygote sits in the cgroup the next
evaluation gets (`warm_cgroups`), so the set-up costs no evaluation's time and is born in the
right cgroup.
"""

from __future__ import annotations

import gc
import json
import os
import selectors
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from evaluators import mountns, warm_fork
from evaluators.warm_fork import SETUP_FAILED

__all__ = ["SETUP_FAILED", "main", "serve", "supported"]


def supported(level: str) -> bool:
    """Whether the warm path gives `level`'s isolation here: namespaces for each evaluation
    need root (bubblewrap keeps root's capabilities inside; as another user it drops them)."""
    return os.geteuid() == 0 and sys.platform.startswith("linux") and hasattr(os, "pidfd_open")


# ---------------------------------------------------------------------------------------------
# The zygote (inside the sandbox): `python -m evaluators.warm PROBLEM_DIR EVALUATOR_FILE LEVEL`
# ---------------------------------------------------------------------------------------------


def _preload(problem_dir: Path, evaluator_file: str,
             role: str = "judge") -> tuple[Any, str]:
    """Import what every evaluation needs: the harness's Preloaded, or None and the error
    the evaluator raised when it does not import (each evaluation then reports it). A
    candidate interpreter imports the candidate's host and worker and never the problem's
    evaluator: its forks hold nothing of the judge's."""
    try:
        import numpy  # noqa: F401 - fork-safe with one BLAS thread (the thread vars are set)
    except ImportError:
        pass
    if role == "candidate":
        from evaluators import candidate_host, candidate_worker  # noqa: F401

        return None, ""
    from evaluators import harness

    try:
        return harness.Preloaded(problem_dir, evaluator_file), ""
    except BaseException as exc:  # noqa: BLE001 - the problem's code: each evaluation reports it
        return None, f"{type(exc).__name__}: {exc}"[:1500]  # the ready message is one 4 KiB read


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def serve(control: socket.socket, problem_dir: Path, evaluator_file: str, level: str,
          role: str = "judge") -> None:
    """The zygote's loop: keep one evaluation prepared when asked, hand each request to one,
    report each exit, kill on request."""
    from evaluators import hidden

    start_dir = os.getcwd()
    had_hidden = hidden.sandboxed()  # the run process handed us hidden descriptors
    preloaded, import_error = _preload(problem_dir, evaluator_file, role)
    # The evaluator has read its hidden files while it was imported (the only time it may):
    # their descriptors are closed before the first fork, so no evaluation inherits them.
    hidden.close_all()
    if preloaded is None and had_hidden and role == "judge":
        # Each fork would import the evaluator again with the hidden files already closed and
        # report a misleading error: a fresh interpreter per stage reports the real one.
        control.send(json.dumps({"ready": False, "reason": f"the evaluator did not import: "
                                 f"{import_error}"}).encode())
        return
    if _threads() > 1:
        # A thread started by an import would be missing (holding its locks) in every fork.
        control.send(json.dumps({"ready": False, "reason": f"the evaluator's imports started "
                                 f"{_threads() - 1} thread(s): forking is not safe"}).encode())
        return
    sys.stdout.flush()
    sys.stderr.flush()
    # What the zygote imported is never collected: moved out of the collector's sight, a fork's
    # garbage collections do not touch (and so copy) every page of it.
    gc.collect()
    gc.freeze()
    control.send(json.dumps({"ready": True, "preloaded": preloaded is not None}).encode())
    _Zygote(control, level, role, preloaded, start_dir).loop()


class _Zygote:
    """The zygote's state: its selector (control socket; per evaluation its pidfd and status
    socket) and the one prepared evaluation it may hold (`warm_fork`)."""

    def __init__(self, control: socket.socket, level: str, role: str, preloaded: Any,
                 start_dir: str):
        self.control, self.level, self.role = control, level, role
        self.preloaded, self.start_dir = preloaded, start_dir
        self.prepared: warm_fork.Prepared | None = None
        self.sel = selectors.DefaultSelector()
        self.sel.register(control, selectors.EVENT_READ, ("control",))

    def loop(self) -> None:
        while True:
            for key, _ in self.sel.select():
                if self.sel.get_map().get(key.fd) is not key:
                    # Handled earlier in this batch: an evaluation's exit closes its status
                    # socket (whose end-of-file then came in the same batch), and a new request
                    # may have been given the same descriptor number meanwhile.
                    continue
                kind = key.data[0]
                if kind == "control" and not self._control():
                    return  # the run process is gone: so are we (our forks die with us)
                if kind == "prepared":  # a prepared evaluation ended unused
                    self._drop_prepared()
                elif kind == "exit":
                    self._exited(key)
                elif kind == "status":
                    self._stop(key)

    def _close_in_child(self) -> None:
        """In a fork: nothing of the zygote's (control socket, other evaluations' status
        sockets, pidfds and prepared sockets) stays open."""
        for other in list(self.sel.get_map().values()):
            if other.data[0] == "exit":
                other.data[1].release()
            if isinstance(other.fileobj, socket.socket):
                other.fileobj.close()
            else:
                os.close(other.fd)
        self.sel.close()

    def _prepare(self, settings: dict[str, Any]) -> None:
        if self.prepared is None:
            self.prepared = warm_fork.prepare(settings, self.level, self.role, self.preloaded,
                                              self.start_dir, self._close_in_child)
            self.sel.register(self.prepared.pidfd, selectors.EVENT_READ, ("prepared",))

    def _drop_prepared(self) -> None:
        assert self.prepared is not None
        self.sel.unregister(self.prepared.pidfd)
        why = warm_fork.setup_error(self.prepared)
        if why:
            print(f"warm interpreter: an evaluation's set-up failed: {why}", file=sys.stderr)
        warm_fork.discard(self.prepared)
        self.prepared = None

    def _control(self) -> bool:
        """One message of the run process: 'prepare' (set up the next evaluation now, while
        the zygote sits in the cgroup it gets) or a request; False once the run is gone."""
        try:
            message, fds, _, _ = socket.recv_fds(self.control, 1 << 22, 8)
        except OSError:
            return False
        if not message:
            return False
        body = json.loads(message)
        if "prepare" in body:
            for fd in fds:
                os.close(fd)
            try:
                self._prepare(body["prepare"])
            except OSError as exc:  # the next request tries again, and reports it
                print(f"warm interpreter: could not prepare an evaluation: {exc}",
                      file=sys.stderr)
        elif not 4 <= len(fds) <= 8:
            for fd in fds:
                os.close(fd)
        else:
            self._request(body, message, fds)
        return True

    def _request(self, request: dict[str, Any], message: bytes, fds: list[int]) -> None:
        status = socket.socket(fileno=fds[3])
        passing = [*fds[:3], *fds[4:]]
        why = ""
        chain = None
        for _ in range(2):  # a prepared evaluation that died meanwhile: once more, fresh
            try:
                self._prepare(request)
            except OSError as exc:
                why = f"{type(exc).__name__}: {exc}"
                break
            chain, self.prepared = self.prepared, None
            assert chain is not None
            self.sel.unregister(chain.pidfd)
            why = warm_fork.dispatch(chain, message, passing)
            if not why:
                break
            warm_fork.discard(chain)
            chain = None
        for fd in passing:
            os.close(fd)  # the evaluation's own now
        if chain is None:
            try:
                status.send(json.dumps({"returncode": SETUP_FAILED, "reason": why}).encode())
            except OSError:
                pass
            status.close()
            return
        self.sel.register(chain.pidfd, selectors.EVENT_READ, ("exit", chain, status))
        self.sel.register(status, selectors.EVENT_READ, ("status", chain.pid))

    def _exited(self, key: selectors.SelectorKey) -> None:
        _, chain, status = key.data
        _, wait_status = os.waitpid(chain.pid, 0)
        self.sel.unregister(key.fd)
        os.close(key.fd)
        if status.fileno() in self.sel.get_map():
            self.sel.unregister(status)
        code = os.waitstatus_to_exitcode(wait_status)
        # A signal as 128 + its number, as a shell (and bubblewrap) reports it.
        report: dict[str, Any] = {"returncode": code if code >= 0 else 128 - code}
        if report["returncode"] == SETUP_FAILED:
            report["reason"] = warm_fork.setup_error(chain)
        try:
            status.send(json.dumps(report).encode())
        except OSError:
            pass
        status.close()
        chain.release()  # its namespaces' teardown: after the report, off the critical path

    def _stop(self, key: selectors.SelectorKey) -> None:
        try:
            data = key.fileobj.recv(64)  # type: ignore[union-attr]
        except OSError:
            data = b""
        if not data:
            self.sel.unregister(key.fileobj)  # the run stopped listening: stop the evaluation
        try:
            os.kill(key.data[1], signal.SIGKILL)
        except ProcessLookupError:
            pass


def _receive_hidden(control: socket.socket) -> None:
    """The run process's first message: the problem's hidden files as descriptors, handed to
    `evaluators.hidden` to be read and closed as a cold harness's inherited ones are."""
    from evaluators import hidden

    names, fds = [], []
    try:
        message, fds, _, _ = socket.recv_fds(control, 1 << 16, 250)
        names = json.loads(message or b"[]")
    except (OSError, ValueError):
        pass
    if len(names) != len(fds):
        for fd in fds:
            os.close(fd)
        names, fds = [], []
    hidden.adopt(dict(zip(names, fds, strict=True)))


def main() -> int:
    problem_dir, evaluator_file, level = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    role = sys.argv[4] if len(sys.argv) > 4 else "judge"
    control = socket.socket(fileno=int(os.environ.pop("EVOLVE_WARM_FD")))
    # The zygote must not die of a stray SIGINT meant for the run (Ctrl-C reaches the group).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _receive_hidden(control)
    try:
        # The unshare level's file-system view, applied before the evaluator is imported as the
        # cold harness does; every fork's mount namespace is a copy of it.
        mountns.apply_from_environment()
    except OSError as exc:
        control.send(json.dumps({"ready": False,
                                 "reason": f"sandbox setup failed: {exc}"}).encode())
        return 1
    try:
        serve(control, problem_dir, evaluator_file, level, role)
    except BaseException as exc:  # noqa: BLE001
        print(f"warm interpreter: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
