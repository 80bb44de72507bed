"""The trusted end of the candidate's sandbox: `python -m evaluators.candidate_host FD PROGRAM`
(or called in a warm candidate interpreter's fork).

It never runs candidate code. It forks the candidate worker (`evaluators.candidate_worker`),
which applies the resource limits, drops to the candidate's own throw-away uid and imports the
program, and on the judge's request more workers apart from the others (`Candidate.isolated`:
each imports the program afresh; `apart` gives each namespaces and writable folders of its
own). It relays each request of the judge to its workers (one message may carry a request
for each: all are sent, then every reply read) and the replies back, adding what the
candidate cannot forge:
- the CPU time the candidate's processes used since the previous reply (all threads of each
  worker read from the kernel's per-process clock, plus every process they started, even ones
  that left their tree): work deferred to a thread or a child after a call returns is charged
  to the next reply, so it is never free;
- a deadline per request: a candidate that does not answer in time is killed;
- a size limit per reply, checked on the length before any of it is read;
- a worker's end (crash, memory, CPU limit) as a reason, reported for this and every later
  request (the other workers are killed with it);
- the kernel's protections, as the harness gives the judge's process: each worker loads the
  seccomp filter (`syscall_filter`) on itself before candidate code, so it and all it starts
  carry it, and hands this process the listener through which it answers the refusals (a
  refused call ends the candidate: 'sandbox-denied'); each worker joins the evaluation's
  cgroup (`cgroup_join`, memory and process limits over the candidate's whole tree) before it
  imports the program.

Envelopes: REQUEST and PART below from the judge, REPLY and REPLY_PART back.
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
from collections.abc import Collection
from pathlib import Path

from evaluators import apart, cgroup_join, channel, proctree, syscall_filter
from evaluators.limits import apply_limits, drop_privileges
from evaluators.validate import classify_worker_exit

# Judge to host: seconds allowed, largest reply of one process in bytes, op, count; for RELAY
# `count` parts follow, each PART (process number, payload bytes) and its payload; SPAWN
# starts `count` more processes.
REQUEST = struct.Struct(">dQBH")
PART = struct.Struct(">HI")
RELAY, SPAWN = 0, 1
# Host to judge: status, CPU nanoseconds, count; then `count` parts, each REPLY_PART (payload
# bytes) and its payload: the replies in the request's order (OK), or one map {"kind",
# "reason"} (every other status).
REPLY = struct.Struct(">BQH")
REPLY_PART = struct.Struct(">I")
OK, ENDED, HUGE, TIMEOUT = 0, 1, 2, 3
MAX_WORKERS = 256
MAX_JUDGE_FRAME = 1 << 31
FD_VAR = "EVOLVE_CANDIDATE_FD"

_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
# Every how many replies a worker that was not asked anything is read anyway (Tree.total_ns).
SWEEP = 16


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


class _Worker:
    """One candidate process: its pid, the host's end of its channel and its /proc files."""

    def __init__(self, pid: int, sock: socket.socket):
        self.pid = pid
        self.sock = sock
        self.fd = sock.fileno()
        self.pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
        self.clock = _process_clock(pid)
        self.reader = channel.FrameReader(sock)
        self.reaped = False
        self.last_ns = 0  # its own CPU time as last read (kept once it is gone)
        self.alone = True  # as last read: one thread, no child of its own
        self.stat = _ProcFile(f"/proc/{pid}/stat")
        self.children = _ProcFile(f"/proc/{pid}/task/{pid}/children")

    def close(self) -> None:
        for f in (self.stat, self.children):
            f.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        self.sock.close()


class Tree:
    """CPU time of the workers and everything they started (this process is their subreaper,
    so an orphan comes back to it and is counted until it is reaped, then through our
    rusage)."""

    def __init__(self, workers: list[_Worker]):
        self.workers = workers  # the host's own list: workers started later count too
        self.me = os.getpid()
        self.last_ns = 0
        self._readings = 0
        self._my_children = _ProcFile(f"/proc/{self.me}/task/{self.me}/children")

    @staticmethod
    def _worker_ns(worker: _Worker) -> bool:
        """Read the worker's own time and its reaped children's into `last_ns` (kept as last
        read once it is gone); whether it runs alone: one thread, no child of its own."""
        try:
            own = time.clock_gettime_ns(worker.clock)
            fields = worker.stat.read().rsplit(b")", 1)[1].split()
            reaped = int(fields[13]) + int(fields[14])
            alone = int(fields[17]) == 1 and not worker.children.read().strip()
        except OSError:
            return False
        worker.last_ns = own + reaped * _TICK_NS
        return alone

    def total_ns(self, asked: Collection[_Worker] | None = None) -> int:
        """The tree's CPU time. Every worker that was `asked` (None: all) is read, and every
        one seen with threads or children; a worker seen alone and idle is read every
        SWEEP-th time only (its clock is cumulative: what it did meanwhile is charged then,
        as work between requests always is), so a step of many runs reads only theirs."""
        self._readings += 1
        sweep = asked is None or self._readings % SWEEP == 0
        total, alone = 0, True
        for worker in self.workers:
            if worker.reaped:
                continue  # its time is in our rusage now
            if sweep or not worker.alone or worker in asked:
                worker.alone = self._worker_ns(worker)
            total += worker.last_ns
            alone = alone and worker.alone
        if alone:  # and no other child of ours (e.g. an orphan) to count
            try:
                mine = sorted(self._my_children.read().split())
                alone = mine == sorted(str(w.pid).encode() for w in self.workers
                                       if not w.reaped)
            except OSError:
                alone = False
        own = resource.getrusage(resource.RUSAGE_CHILDREN)
        total += int((own.ru_utime + own.ru_stime) * 1e9)
        if not alone:  # threads or children: every descendant's time, found through /proc
            total += self._descendants_ns()
        # Never backwards (a child's ticks move into our rusage when it is reaped).
        self.last_ns = max(self.last_ns, total)
        return self.last_ns

    def _descendants_ns(self) -> int:
        total = 0
        workers = [w.pid for w in self.workers if not w.reaped]
        seen = {self.me, *workers}
        frontier = [c for w in workers for c in _children(w)]
        frontier += [p for p in _children(self.me) if p not in seen]
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
        self._my_children.close()


def _start_worker(program: Path, sock: socket.socket, keep: socket.socket, cgroup_fds: list[int],
                  admitted: tuple[int | None, int | None], limits: dict, uid: str,
                  seccomp: str | None, own: dict | None) -> int:
    admitted_r, admitted_w = admitted
    pid = os.fork()
    if pid:
        return pid
    try:
        keep.close()
        cgroup_join.close(cgroup_fds, admitted_w)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        fd = sock.detach()
        if admitted_r is not None:  # out of the way of 3 and 4 first
            admitted_r = fcntl.fcntl(admitted_r, fcntl.F_DUPFD, 100)
        # Only stdin/out/err, the channel to the host and (until it is admitted to the
        # evaluation's cgroup) the host's word on that stay open in the candidate: not the
        # judge's channel, another worker's, nor a seccomp listener.
        os.dup2(fd, 3)
        if admitted_r is not None:
            os.dup2(admitted_r, 4)
            admitted_r = 4
        os.closerange(5 if admitted_r is not None else 4, 65536)
        if own is not None:
            apart.apart(own)  # a process apart: namespaces and folders of its own (if root)
        _filter_self(seccomp, 3)
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


def _filter_self(seccomp: str | None, channel_fd: int) -> None:
    """In the worker, before candidate code: load the seccomp filter on itself (everything it
    starts carries it) and hand the listener, which answers and records its refusals, to the
    host over the channel (the first thing on it: b"L" with the descriptor, or b"N" for no
    listener). Loaded here rather than on the host, so that the host may still fork a worker
    that makes namespaces of its own first."""
    listener = syscall_filter.Listener.install(seccomp) if seccomp else None
    sock = socket.socket(fileno=os.dup(channel_fd))
    try:
        if listener is not None and listener.fd is not None:
            socket.send_fds(sock, [b"L"], [listener.fd])
            listener.close_in_child()
        else:
            sock.sendall(b"N")
    finally:
        sock.close()


class Host:
    def __init__(self, program: Path, judge: socket.socket, seccomp: str | None = None):
        self.program = program
        self.judge = judge
        self.judge_reader = channel.FrameReader(judge)
        # The seccomp filter each worker loads on itself (syscall_filter), and the listeners
        # through which this process answers and records their refusals.
        self.seccomp = seccomp
        self.names = syscall_filter.names(seccomp) if seccomp else {}
        self.listeners: list[syscall_filter.Listener] = []
        # Read once, for every worker (none of them sees these).
        self.limits = json.loads(os.environ.pop("EVOLVE_SANDBOX_LIMITS", "{}"))
        self.uid = os.environ.pop("EVOLVE_SANDBOX_UID", "")
        # The evaluation's cgroup, if the executor made one: this process moves each worker
        # in while the worker sets itself up (the move waits for a kernel grace period); the
        # descriptors stay open here for the workers the judge asks for later.
        self.cgroup_fds = cgroup_join.take_from_environment()
        self.workers: list[_Worker] = []
        self.tree = Tree(self.workers)
        self.ended: dict[str, str] | None = None
        self.charged_ns = 0
        self._apart: dict | None = None
        self.spawn(apart_from_others=False)

    def spawn(self, *, apart_from_others: bool = True) -> None:
        """Start one more worker: a fork of this process (which never runs candidate code), so
        it imports the program afresh and shares no memory with the others; apart from the
        others, it also gets namespaces and writable folders of its own (`apart`)."""
        own = None
        if apart_from_others:
            if self._apart is None:
                self._apart = apart.plan(self.program, self.limits)
            own = self._apart
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        admitted_r, admitted_w = os.pipe() if self.cgroup_fds else (None, None)
        try:
            pid = _start_worker(self.program, theirs, ours, self.cgroup_fds,
                                (admitted_r, admitted_w), self.limits, self.uid, self.seccomp,
                                own)
        except BaseException:
            ours.close()
            cgroup_join.close([], admitted_r, admitted_w)
            raise
        finally:
            theirs.close()
        cgroup_join.admit(pid, self.cgroup_fds, admitted_w, keep=True)
        cgroup_join.close([], admitted_r)
        self.workers.append(_Worker(pid, ours))
        self._take_listener(ours)

    def _take_listener(self, sock: socket.socket) -> None:
        """The worker's seccomp listener (the first thing it sends, before candidate code);
        a worker that ends first says nothing, and its end is reported on the next request."""
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1, 1)
        except OSError:
            message, fds = b"", []
        if not message and self.ended is None:
            self.ended = {"kind": "crash", "reason": "the candidate's process could not set "
                                                     "itself up (its stderr says why)"}
        for fd in fds:
            os.set_inheritable(fd, False)
            self.listeners.append(syscall_filter.Listener(fd, self.names))
        if message != b"L":
            for fd in fds:
                os.close(fd)
            del self.listeners[len(self.listeners) - len(fds):]

    def _reply(self, status: int, parts: list[bytes],
               asked: Collection[_Worker] | None = None) -> None:
        total = self.tree.total_ns(asked)
        spent, self.charged_ns = total - self.charged_ns, total
        head = REPLY.pack(status, max(spent, 0), len(parts))
        body = b"".join(REPLY_PART.pack(len(p)) + p for p in parts)
        channel.send_frame(self.judge, head + body)

    def _failed(self, status: int) -> None:
        self._reply(status, [channel.encode(self.ended)])

    def _end(self, kind: str, reason: str) -> None:
        self.ended = {"kind": kind, "reason": reason}
        self.kill()

    def _worker_exited(self, worker: _Worker) -> bool:
        done, status, usage = os.wait4(worker.pid, os.WNOHANG)
        if not done:
            return False
        worker.reaped = True
        cpu = usage.ru_utime + usage.ru_stime
        kind, reason = classify_worker_exit(status, usage.ru_maxrss / 1024,
                                            self.limits.get("memory_mb"), cpu,
                                            self.limits.get("cpu_seconds"))
        if kind == "crash" and os.WIFEXITED(status):
            reason = (f"the program's process ended (exit code {os.WEXITSTATUS(status)}) "
                      f"while the evaluator waited for an answer; do not exit or kill "
                      f"processes")
        self._end(kind, reason)  # one worker's end is the candidate's: the others stop too
        return True

    def kill(self) -> None:
        for worker in self.workers:
            if not worker.reaped:  # a reaped pid may be another process's by now
                try:
                    os.kill(worker.pid, signal.SIGKILL)
                    # Reaped here, so its CPU time reaches our parent's accounting too.
                    os.waitpid(worker.pid, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass
                worker.reaped = True
        proctree.kill_descendants(os.getpid())

    def close(self) -> None:
        self.kill()
        self.tree.close()
        for worker in self.workers:
            worker.close()
        cgroup_join.close(self.cgroup_fds)
        self.cgroup_fds = []

    def _listener(self) -> list[int]:
        return [lis.fd for lis in self.listeners if lis.fd is not None]

    def _refused(self, ready: list[int]) -> bool:
        """Answer a refused system call (EPERM) if one is waiting; a refusal ends the
        candidate, whatever the program made of the error."""
        waiting = [lis for lis in self.listeners if lis.fd is not None and lis.fd in ready]
        # A listener is readable for good once its worker ended (answer() closes it then).
        if not [lis for lis in waiting if lis.answer()]:
            return False
        if self.ended is None or self.ended["kind"] != "sandbox-denied":
            refused = self.stop_listeners()  # answers what else is waiting, then stops
            count = sum(lis.count for lis in self.listeners)
            self._end("sandbox-denied", syscall_filter.denial_reason(refused, count))
        return True

    def stop_listeners(self) -> list[str]:
        return [name for lis in self.listeners for name in lis.stop()]

    def _read_reply(self, worker: _Worker, deadline: float, max_bytes: int,
                    ready: bool) -> bytes | None:
        try:
            return worker.reader.frame(max_bytes=max_bytes, deadline=deadline, what="reply",
                                       ready=ready)
        except channel.ChannelTimeout:
            self._end("timeout", "")
            return None
        except channel.ChannelError as exc:
            if exc.kind == "huge":
                self._end("huge", str(exc))
                return None
            # The worker closed its end: it is ending; say how.
            for _ in range(200):
                if self._worker_exited(worker):
                    return None
                time.sleep(0.005)
            self._end("crash", "the program closed the evaluator's channel")
            return None

    def _await(self, owed: list[_Worker], deadline: float, max_bytes: int) \
            -> dict[_Worker, bytes] | None:
        """Every worker's reply in `owed`, or None with `self.ended` set."""
        replies: dict[_Worker, bytes] = {}
        waiting = {w.fd: w for w in owed}
        for fd, worker in list(waiting.items()):
            if worker.reader.buffered():  # sent before it was asked: read it as it comes
                reply = self._read_reply(worker, deadline, max_bytes, False)
                if reply is None:
                    return None
                replies[worker] = reply
                del waiting[fd]
        pidfds = {w.pidfd: w for w in owed if w.pidfd is not None}
        listening = self._listener()
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._end("timeout", "")
                return None
            watch = [*waiting, *(w.pidfd for w in waiting.values() if w.pidfd is not None),
                     *listening]
            ready, _, _ = select.select(watch, [], [], min(remaining, 0.05))
            if listening and self._refused(ready):
                return None
            for fd in ready:  # the replies first: a worker may end right after its reply
                worker = waiting.pop(fd, None)
                if worker is not None:
                    reply = self._read_reply(worker, deadline, max_bytes, True)
                    if reply is None:
                        return None
                    replies[worker] = reply
            for fd in ready:
                worker = pidfds.get(fd)
                if worker is not None and worker.fd in waiting \
                        and self._worker_exited(worker):
                    return None
            if listening:
                listening = self._listener()  # one that ended was closed
            if not pidfds and any(self._worker_exited(w) for w in waiting.values()):
                return None
        return replies

    def _wait_for_judge(self) -> None:
        """Until the judge's next request: refusals of a candidate thread or child that runs
        between requests are answered (and end the candidate) meanwhile."""
        while self._listener():
            ready, _, _ = select.select([self.judge, *self._listener()], [], [])
            self._refused(ready)
            if self.judge.fileno() in ready or self.judge in ready:
                return

    def _parts(self, frame: bytes, count: int) -> list[tuple[_Worker, memoryview]] | None:
        """The request's parts, each for one worker (at most one each); None for a request
        that names no such worker (the judge's mistake: it ends the candidate)."""
        view = memoryview(frame)
        at, parts, named = REQUEST.size, [], set()
        for _ in range(count):
            if at + PART.size > len(view):
                return None
            number, size = PART.unpack_from(view, at)
            at += PART.size
            if number >= len(self.workers) or number in named or at + size > len(view):
                return None
            named.add(number)
            parts.append((self.workers[number], view[at:at + size]))
            at += size
        return parts if at == len(view) else None

    def _relay(self, frame: bytes, seconds: float, max_bytes: int, count: int) -> None:
        parts = self._parts(frame, count)
        if parts is None:
            self._end("crash", "the evaluator sent a request for no candidate process")
            self._failed(ENDED)
            return
        # Every worker's request first, then every reply: the workers run side by side.
        for worker, payload in parts:
            try:
                channel.send_frame(worker.sock, payload)
            except OSError:
                pass  # the worker is gone; _await says how
        deadline = time.monotonic() + max(seconds, 0.0)
        replies = self._await([w for w, _ in parts], deadline, max_bytes)
        if replies is not None:
            self._reply(OK, [replies[w] for w, _ in parts], replies)
            return
        assert self.ended is not None
        kind = self.ended["kind"]
        if kind == "timeout":
            self.ended = {"kind": "timeout", "reason": f"no answer within {seconds:.3g} s"}
            self._failed(TIMEOUT)
        elif kind == "huge":
            self.ended = {"kind": "invalid-output", "reason": self.ended["reason"]}
            self._failed(HUGE)
        else:
            self._failed(ENDED)

    def serve(self) -> None:
        while True:
            self._wait_for_judge()
            try:
                frame = self.judge_reader.frame(max_bytes=MAX_JUDGE_FRAME)
            except channel.ChannelError:
                return  # the judge is done
            if len(frame) < REQUEST.size:
                return  # not the judge's request: nothing more to serve
            seconds, max_bytes, op, count = REQUEST.unpack_from(frame)
            if self.ended is not None:
                self._failed(ENDED)
            elif op == SPAWN:
                self._spawn(count)
            else:
                self._relay(frame, seconds, max_bytes, count)

    def _spawn(self, count: int) -> None:
        try:
            for _ in range(count):
                if len(self.workers) >= MAX_WORKERS:
                    raise OSError(f"at most {MAX_WORKERS} candidate processes")
                self.spawn()
        except OSError as exc:
            self._end("crash", f"could not start another candidate process: {exc}")
            self._failed(ENDED)
            return
        self._reply(OK, [])


def run(program: Path, fd: int) -> int:
    """Host one candidate on the channel `fd` until the judge closes it."""
    proctree.set_subreaper()
    judge = socket.socket(fileno=fd)
    # The seccomp filter, loaded by every worker on itself before candidate code (never run
    # the candidate unfiltered when one was sent: a worker that cannot load it ends).
    host = Host(program, judge, os.environ.pop(syscall_filter.SPEC_VAR, None) or None)
    try:
        host.serve()
    finally:
        host.close()
        host.stop_listeners()
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
