"""The trusted end of the candidate's sandbox: `python -m evaluators.candidate_host FD PROGRAM`
(or called in a warm candidate interpreter's fork).

It never runs candidate code. It forks the candidate worker (`evaluators.candidate_worker`),
which applies the resource limits, drops to the candidate's own throw-away uid and imports the
program, then relays each request of the judge to it and each reply back, adding what the
candidate cannot forge:
- the CPU time the candidate's processes used since the previous reply (all threads of the
  worker read from the kernel's per-process clock, plus every process it started, even ones
  that left its tree): work deferred to a thread or a child after a call returns is charged to
  the next reply, so it is never free;
- a deadline per request: a candidate that does not answer in time is killed;
- a size limit per reply, checked on the length before any of it is read;
- the worker's end (crash, memory, CPU limit) as a reason, reported for this and every later
  request;
- the kernel's protections, as the harness gives the judge's process: the seccomp filter
  (`syscall_filter`) is loaded on this process before it forks the worker, so the worker and
  all it starts carry it, and this process answers its refusals (a refused call ends the
  candidate: 'sandbox-denied'); the worker joins the evaluation's cgroup (`cgroup_join`,
  memory and process limits over the candidate's whole tree) before it imports the program.

Envelope from the judge: struct ">dQ" (seconds allowed, largest reply in bytes) + the request
frame's payload. Back to the judge: struct ">BQ" (status, CPU nanoseconds) + the worker's reply
(status OK) or a map {"kind", "reason"} (every other status).
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import select
import signal
import socket
import struct
import sys
import time
from pathlib import Path

from evaluators import cgroup_join, channel, proctree, syscall_filter
from evaluators.limits import apply_limits, drop_privileges
from evaluators.validate import classify_worker_exit

REQUEST = struct.Struct(">dQ")
REPLY = struct.Struct(">BQ")
OK, ENDED, HUGE, TIMEOUT = 0, 1, 2, 3
MAX_JUDGE_FRAME = 1 << 31
FD_VAR = "EVOLVE_CANDIDATE_FD"

_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _process_clock(pid: int) -> int:
    """The kernel's CPU clock of process `pid` (all its threads), as a clock id."""
    return ((~pid) << 3) | 2


def _stat_ticks(pid: int) -> tuple[int, int]:
    """(own utime+stime, reaped children's cutime+cstime) of `pid` in clock ticks."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def _children(pid: int) -> list[int]:
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                found += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return found


class _ProcFile:
    """A /proc file of one process kept open: procfs makes its text afresh on every read from
    offset 0, so each reading costs one pread, not an open, a read and a close (the host reads
    these on every reply). The descriptor stays tied to that process, whatever reuses its pid;
    once the process is gone, reading raises OSError."""

    def __init__(self, path: str):
        self.path = path
        self.fd: int | None = None

    def read(self) -> bytes:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        return os.pread(self.fd, 4096, 0)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Tree:
    """CPU time of the worker and everything it started (this process is their subreaper, so
    an orphan comes back to it and is counted until it is reaped, then through our rusage)."""

    def __init__(self, worker: int):
        self.worker = worker
        self.clock = _process_clock(worker)
        self.me = os.getpid()
        self.last_ns = 0
        self._worker_stat = _ProcFile(f"/proc/{worker}/stat")
        self._worker_children = _ProcFile(f"/proc/{worker}/task/{worker}/children")
        self._my_children = _ProcFile(f"/proc/{self.me}/task/{self.me}/children")

    def _alone(self) -> tuple[int, bool]:
        """(the worker's reaped children's ticks, whether it runs alone: one thread, no child
        of its own, and no other child of ours, e.g. an orphan, to count); OSError once the
        worker is gone."""
        fields = self._worker_stat.read().rsplit(b")", 1)[1].split()
        reaped = int(fields[13]) + int(fields[14])
        if int(fields[17]) != 1 or self._worker_children.read().strip():
            return reaped, False
        try:
            mine = self._my_children.read().split()
        except OSError:
            return reaped, False
        return reaped, mine in ([], [str(self.worker).encode()])

    def total_ns(self) -> int:
        alone = False
        try:
            total = time.clock_gettime_ns(self.clock)
            reaped, alone = self._alone()
            total += reaped * _TICK_NS
        except OSError:
            total = self.last_ns  # the worker is gone: its own time stays as last read
        own = resource.getrusage(resource.RUSAGE_CHILDREN)
        total += int((own.ru_utime + own.ru_stime) * 1e9)
        if not alone:  # threads or children: every descendant's time, found through /proc
            total += self._descendants_ns()
        # Never backwards (a child's ticks move into our rusage when it is reaped).
        self.last_ns = max(self.last_ns, total)
        return self.last_ns

    def _descendants_ns(self) -> int:
        total = 0
        seen = {self.me, self.worker}
        frontier = _children(self.worker) + [p for p in _children(self.me) if p != self.worker]
        while frontier:
            pid = frontier.pop()
            if pid in seen:
                continue
            seen.add(pid)
            try:
                mine, reaped = _stat_ticks(pid)
            except OSError:
                continue
            total += (mine + reaped) * _TICK_NS
            frontier += _children(pid)
        return total

    def close(self) -> None:
        for f in (self._worker_stat, self._worker_children, self._my_children):
            f.close()


def _start_worker(program: Path, sock: socket.socket, keep: socket.socket,
                  refusals: syscall_filter.Listener | None, cgroup_fds: list[int],
                  admitted: tuple[int | None, int | None]) -> int:
    limits = json.loads(os.environ.pop("EVOLVE_SANDBOX_LIMITS", "{}"))
    uid = os.environ.pop("EVOLVE_SANDBOX_UID", "")
    admitted_r, admitted_w = admitted
    pid = os.fork()
    if pid:
        return pid
    try:
        if refusals is not None:
            refusals.close_in_child()  # the host's alone
        keep.close()
        cgroup_join.close(cgroup_fds, admitted_w)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        fd = sock.detach()
        if admitted_r is not None:  # out of the way of 3 and 4 first
            admitted_r = fcntl.fcntl(admitted_r, fcntl.F_DUPFD, 100)
        # Only stdin/out/err, the channel to the host and (until it is admitted to the
        # evaluation's cgroup) the host's word on that stay open in the candidate.
        os.dup2(fd, 3)
        if admitted_r is not None:
            os.dup2(admitted_r, 4)
            admitted_r = 4
        os.closerange(5 if admitted_r is not None else 4, 65536)
        apply_limits(limits, dedicated_uid=bool(uid))
        if uid:
            drop_privileges(int(uid))
        # In the evaluation's cgroup (limits over the whole tree) before candidate code.
        cgroup_join.wait_admitted(admitted_r)
        from evaluators import candidate_worker

        candidate_worker.main(program, 3)
    except BaseException as exc:  # noqa: BLE001 - reported by the host as the worker's end
        try:
            os.write(2, f"candidate worker: {type(exc).__name__}: {exc}\n".encode())
        except OSError:
            pass
    os._exit(70)


class Host:
    def __init__(self, program: Path, judge: socket.socket,
                 refusals: syscall_filter.Listener | None = None):
        self.judge = judge
        self.refusals = refusals
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # The evaluation's cgroup, if the executor made one: this process moves the worker in
        # while the worker sets itself up (the move waits for a kernel grace period).
        cgroup_fds = cgroup_join.take_from_environment()
        admitted_r, admitted_w = os.pipe() if cgroup_fds else (None, None)
        self.pid = _start_worker(program, theirs, ours, refusals, cgroup_fds,
                                 (admitted_r, admitted_w))
        theirs.close()
        cgroup_join.admit(self.pid, cgroup_fds, admitted_w)
        cgroup_join.close([], admitted_r)
        self.worker = ours
        self.tree = Tree(self.pid)
        self.pidfd = os.pidfd_open(self.pid) if hasattr(os, "pidfd_open") else None
        self.ended: dict[str, str] | None = None
        self.limits = json.loads(os.environ.get("EVOLVE_SANDBOX_LIMITS", "{}"))
        self.charged_ns = 0
        self.reaped = False

    def _reply(self, status: int, payload: bytes) -> None:
        total = self.tree.total_ns()
        spent, self.charged_ns = total - self.charged_ns, total
        channel.send_frame(self.judge, REPLY.pack(status, max(spent, 0)) + payload)

    def _end(self, kind: str, reason: str) -> None:
        self.ended = {"kind": kind, "reason": reason}
        self.kill()

    def _worker_exited(self) -> bool:
        done, status, usage = os.wait4(self.pid, os.WNOHANG)
        if not done:
            return False
        cpu = usage.ru_utime + usage.ru_stime
        kind, reason = classify_worker_exit(status, usage.ru_maxrss / 1024,
                                            self.limits.get("memory_mb"), cpu,
                                            self.limits.get("cpu_seconds"))
        if kind == "crash" and os.WIFEXITED(status):
            reason = (f"the program's process ended (exit code {os.WEXITSTATUS(status)}) "
                      f"while the evaluator waited for an answer; do not exit or kill "
                      f"processes")
        self.ended = {"kind": kind, "reason": reason}
        self.reaped = True
        return True

    def kill(self) -> None:
        if not self.reaped:  # a reaped pid may be another process's by now
            try:
                os.kill(self.pid, signal.SIGKILL)
                # Reaped here, so its CPU time reaches our parent's accounting too.
                os.waitpid(self.pid, 0)
                self.reaped = True
            except (ProcessLookupError, ChildProcessError):
                pass
        proctree.kill_descendants(os.getpid())

    def _listener(self) -> list[int]:
        fd = self.refusals.fd if self.refusals is not None else None
        return [fd] if fd is not None else []

    def _refused(self, ready: list[int]) -> bool:
        """Answer a refused system call (EPERM) if one is waiting; a refusal ends the
        candidate, whatever the program made of the error."""
        if not self.refusals or self.refusals.fd is None or self.refusals.fd not in ready:
            return False
        self.refusals.answer()
        if self.ended is None or self.ended["kind"] != "sandbox-denied":
            refused = self.refusals.stop()  # answers what else is waiting, then stops
            self._end("sandbox-denied",
                      syscall_filter.denial_reason(refused, self.refusals.count))
        return True

    def _await(self, deadline: float, max_bytes: int) -> bytes | None:
        """The worker's reply, or None with `self.ended` set."""
        watch = [self.worker] + ([self.pidfd] if self.pidfd is not None else [])
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._end("timeout", "")
                return None
            ready, _, _ = select.select(watch + self._listener(), [], [], min(remaining, 0.05))
            if self._refused(ready):
                return None
            if self.worker in ready:
                try:
                    return channel.recv_frame(self.worker, max_bytes=max_bytes,
                                              deadline=deadline, what="reply")
                except channel.ChannelTimeout:
                    self._end("timeout", "")
                    return None
                except channel.ChannelError as exc:
                    if exc.kind == "huge":
                        self._end("huge", str(exc))
                        return None
                    # The worker closed its end: it is ending; say how.
                    for _ in range(200):
                        if self._worker_exited():
                            return None
                        time.sleep(0.005)
                    self._end("crash", "the program closed the evaluator's channel")
                    return None
            if (self.pidfd is None or self.pidfd in ready) and self._worker_exited():
                return None

    def _wait_for_judge(self) -> None:
        """Until the judge's next request: refusals of a candidate thread or child that runs
        between requests are answered (and end the candidate) meanwhile."""
        while self._listener():
            ready, _, _ = select.select([self.judge, *self._listener()], [], [])
            self._refused(ready)
            if self.judge.fileno() in ready or self.judge in ready:
                return

    def serve(self) -> None:
        while True:
            self._wait_for_judge()
            try:
                frame = channel.recv_frame(self.judge, max_bytes=MAX_JUDGE_FRAME)
            except channel.ChannelError:
                return  # the judge is done
            seconds, max_bytes = REQUEST.unpack_from(frame)
            if self.ended is not None:
                self._reply(ENDED, channel.encode(self.ended))
                continue
            try:
                channel.send_frame(self.worker, frame[REQUEST.size:])
            except OSError:
                pass  # the worker is gone; _await says how
            deadline = time.monotonic() + max(seconds, 0.0)
            reply = self._await(deadline, max_bytes)
            if reply is not None:
                self._reply(OK, reply)
                continue
            assert self.ended is not None
            kind = self.ended["kind"]
            if kind == "timeout":
                self.ended = {"kind": "timeout",
                              "reason": f"no answer within {seconds:.3g} s"}
                self._reply(TIMEOUT, channel.encode(self.ended))
            elif kind == "huge":
                self.ended = {"kind": "invalid-output", "reason": self.ended["reason"]}
                self._reply(HUGE, channel.encode(self.ended))
            else:
                self._reply(ENDED, channel.encode(self.ended))


def run(program: Path, fd: int) -> int:
    """Host one candidate on the channel `fd` until the judge closes it."""
    proctree.set_subreaper()
    judge = socket.socket(fileno=fd)
    # The seccomp filter, on this process so that the worker and all it starts carry it;
    # never run the candidate unfiltered when one was sent.
    try:
        refusals = syscall_filter.Listener.install()
    except OSError as exc:
        print(f"candidate sandbox: setup failed: {exc}", file=sys.stderr)
        judge.close()
        return 1
    host = Host(program, judge, refusals)
    try:
        host.serve()
    finally:
        host.kill()
        host.tree.close()
        if refusals is not None:
            refusals.stop()
        judge.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m evaluators.candidate_host FD PROGRAM", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from evaluators import mountns

    try:
        # The unshare level's file-system view, applied as root before the worker starts.
        mountns.apply_from_environment()
    except OSError as exc:
        print(f"candidate sandbox: setup failed: {exc}", file=sys.stderr)
        return 1
    return run(Path(args[1]).resolve(), int(args[0]))


if __name__ == "__main__":
    sys.exit(main())
