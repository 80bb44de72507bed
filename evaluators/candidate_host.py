"""The trusted end of the candidate's sandbox: `python -m evaluators.candidate_host FD PROGRAM`
(or called in a warm candidate interpreter's fork).

It never runs candidate code, and it stands beside the judge's calls, not between them. It
forks the candidate worker (`evaluators.candidate_worker`), which applies the resource limits,
drops to the candidate's own throw-away uid and imports the program, and on the judge's
request more workers apart from the others (`Candidate.isolated`: each imports the program
afresh; `apart` gives each namespaces and writable folders of its own). Each worker's channel
is a socket pair: the worker holds one end, the judge the other (passed to it here with
SCM_RIGHTS and closed here), so requests and replies go between them directly. This process
supervises, adding what the candidate cannot forge:
- the CPU time of the candidate's processes so far, read when the judge asks (all threads of
  each worker read from the kernel's per-process clock, plus every process they started, even
  ones that left their tree): the reading is cumulative, so work deferred to a thread or a
  child after a call returns is in the next reading, never free;
- the candidate's end: a worker's exit (crash, memory, CPU limit), noticed as it happens,
  ends the candidate (the other workers are killed with it) and is the reason the judge gets
  when it asks why a channel closed; the judge's word that a worker did not answer in time
  ('timeout') or sent a reply it refused ends it too (the judge enforces the deadline per
  request and the size limit per reply on its own end of the channel);
- the kernel's protections, as the harness gives the judge's process: each worker loads the
  seccomp filter (`syscall_filter`) on itself before candidate code, so it and all it starts
  carry it, and hands this process the listener through which it answers the refusals (a
  refused call ends the candidate: 'sandbox-denied'); each worker joins the evaluation's
  cgroup (`cgroup_join`, memory and process limits over the candidate's whole tree) before it
  imports the program.

The control channel's frames: REQUEST below from the judge, REPLY back.
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

from evaluators import apart, cgroup_join, channel, proctree, syscall_filter
from evaluators.limits import apply_limits, drop_privileges
from evaluators.validate import classify_worker_exit

# Judge to host, one frame each, the judge waiting for the reply before the next: op, a
# number (SPAWN: how many; TIMEOUT, CLOSED: which worker) and, for TIMEOUT, the seconds the
# worker was given. SPAWN starts workers, CPU asks for the tree's CPU time, TIMEOUT ends the
# candidate (a worker did not answer in time), REFUSED ends it (the judge refused a reply),
# CLOSED asks why a worker's channel closed.
REQUEST = struct.Struct(">BHd")
SPAWN, CPU, TIMEOUT, REFUSED, CLOSED = 1, 2, 3, 4, 5
# Host to judge, one frame: status, the tree's CPU nanoseconds so far, how many descriptors
# came with it (SCM_RIGHTS: the judge's ends of new workers' channels); after ENDED the
# candidate's end as a map {"kind", "reason"}. The first frame comes unasked: worker 0's.
REPLY = struct.Struct(">BQH")
OK, ENDED = 0, 1
MAX_WORKERS = 256
MAX_SPAWN = 64  # workers (descriptors) per SPAWN: one message carries at most 253
MAX_JUDGE_FRAME = 1 << 16
FD_VAR = "EVOLVE_CANDIDATE_FD"

_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _process_clock(pid: int) -> int:
    """The kernel's CPU clock of process `pid` (all its threads), as a clock id."""
    return ((~pid) << 3) | 2


def _stat_fields(stat: bytes) -> list[bytes]:
    """The fields of a /proc/PID/stat text after the command name (which may hold spaces and
    parentheses): index 0 is the state, 11-12 utime/stime, 13-14 cutime/cstime, 17 threads."""
    return stat.rsplit(b")", 1)[1].split()


def _stat_ticks(pid: int) -> tuple[int, int]:
    """(own utime+stime, reaped children's cutime+cstime) of `pid` in clock ticks."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = _stat_fields(f.read())
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
    these at every CPU reading the judge asks for). The descriptor stays tied to that process, whatever reuses its pid;
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
    """One candidate process: its pid and its /proc files (its channel is the judge's)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
        self.clock = _process_clock(pid)
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


class Tree:
    """CPU time of the workers and everything they started (this process is their subreaper,
    so an orphan comes back to it and is counted until it is reaped, then through our
    rusage)."""

    def __init__(self, workers: list[_Worker]):
        self.workers = workers  # the host's own list: workers started later count too
        self.me = os.getpid()
        self.last_ns = 0
        self._my_children = _ProcFile(f"/proc/{self.me}/task/{self.me}/children")

    @staticmethod
    def _worker_ns(worker: _Worker) -> bool:
        """Read the worker's own time and its reaped children's into `last_ns` (kept as last
        read once it is gone); whether it runs alone: one thread, no child of its own."""
        try:
            own = time.clock_gettime_ns(worker.clock)
            fields = _stat_fields(worker.stat.read())
            reaped = int(fields[13]) + int(fields[14])
            alone = int(fields[17]) == 1 and not worker.children.read().strip()
        except OSError:
            return False
        worker.last_ns = own + reaped * _TICK_NS
        return alone

    def total_ns(self) -> int:
        """The tree's CPU time so far (cumulative: work done at any time is in it)."""
        total, alone = 0, True
        for worker in self.workers:
            if worker.reaped:
                continue  # its time is in our rusage now
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
        self._apart: dict | None = None
        # The first worker, and the judge's end of its channel (the judge reads this first).
        self._reply(OK, [self.spawn(apart_from_others=False)])

    def spawn(self, *, apart_from_others: bool = True) -> socket.socket:
        """Start one more worker: a fork of this process (which never runs candidate code), so
        it imports the program afresh and shares no memory with the others; apart from the
        others, it also gets namespaces and writable folders of its own (`apart`). Returns
        the judge's end of its channel (this process keeps none)."""
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
        self.workers.append(_Worker(pid))
        self._take_listener(ours)
        return ours

    def _take_listener(self, sock: socket.socket) -> None:
        """The worker's seccomp listener (the first thing it sends, before candidate code);
        a worker that ends first says nothing, and its end is reported on the next request."""
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1, 1)
        except OSError:
            message, fds = b"", []
        if not message and self.ended is None:
            self._end("crash", "the candidate's process could not set itself up (its stderr "
                               "says why)")
        for fd in fds:
            if message == b"L":
                os.set_inheritable(fd, False)
                self.listeners.append(syscall_filter.Listener(fd, self.names))
            else:  # descriptors with anything but the listener's word are not one
                os.close(fd)

    def _reply(self, status: int, socks: list[socket.socket] | None = None) -> None:
        """The tree's CPU time so far, the candidate's end (if it ended) and, with SCM_RIGHTS,
        the judge's ends of new workers' channels (closed here once sent)."""
        socks = socks or []
        info = channel.encode(self.ended) if status != OK and self.ended else b""
        payload = REPLY.pack(status, self.tree.total_ns(), len(socks)) + info
        frame = channel.HEADER.pack(len(payload)) + payload
        try:
            if socks:
                sent = socket.send_fds(self.judge, [frame], [s.fileno() for s in socks])
                if sent < len(frame):
                    self.judge.sendall(frame[sent:])
            else:
                self.judge.sendall(frame)
        finally:
            for sock in socks:
                sock.close()

    def _end(self, kind: str, reason: str) -> None:
        self.ended = {"kind": kind, "reason": reason}
        self.kill()

    def _worker_exited(self, worker: _Worker) -> bool:
        done, status, usage = os.wait4(worker.pid, os.WNOHANG)
        if not done:
            return False
        worker.reaped = True
        if self.ended is not None:  # killed with the others, or after the end
            return True
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

    def _live(self) -> list[_Worker]:
        return [w for w in self.workers if not w.reaped]

    def _watch(self, timeout: float | None) -> bool:
        """Wait up to `timeout` (None: for ever) for the judge's next request; meanwhile
        answer the workers' refused calls and notice their ends (either ends the candidate,
        and the judge finds out when it asks). Whether the judge's request is there."""
        polling = any(w.pidfd is None for w in self._live())
        limit = None if timeout is None else time.monotonic() + timeout
        while True:
            live = self._live()
            exits = {w.pidfd: w for w in live if w.pidfd is not None}
            listening = self._listener()
            wait = None if limit is None else max(0.0, limit - time.monotonic())
            if polling:
                wait = 0.05 if wait is None else min(wait, 0.05)
            ready, _, _ = select.select([self.judge, *listening, *exits], [], [], wait)
            if listening:
                self._refused(ready)
            for fd in ready:
                worker = exits.get(fd)
                if worker is not None and not worker.reaped:
                    self._worker_exited(worker)
            if polling:
                for worker in self._live():
                    self._worker_exited(worker)
            if self.judge in ready:
                return True
            if limit is not None and time.monotonic() >= limit:
                return False

    def _why(self, number: int) -> None:
        """The judge found worker `number`'s channel closed: it is ending (or ended); say how.
        A refusal waiting to be answered, or another worker's end, is the reason if it came
        first."""
        if number >= len(self.workers):
            self._end("crash", "the evaluator asked about no candidate process")
            return
        worker = self.workers[number]
        for _ in range(200):
            if self.ended is not None:
                return
            listening = self._listener()
            self._refused(select.select(listening, [], [], 0)[0] if listening else [])
            if self.ended is None and not worker.reaped and self._worker_exited(worker):
                return
            if self.ended is None:
                time.sleep(0.005)
        if self.ended is None:
            self._end("crash", "the program closed the evaluator's channel")

    def serve(self) -> None:
        while True:
            self._watch(None)
            try:
                frame = self.judge_reader.frame(max_bytes=MAX_JUDGE_FRAME)
            except channel.ChannelError:
                return  # the judge is done
            if len(frame) != REQUEST.size:
                return  # not the judge's request: nothing more to serve
            op, number, seconds = REQUEST.unpack(frame)
            if op == SPAWN:
                self._spawn(number)
            elif op == CPU:
                self._reply(OK if self.ended is None else ENDED)
            elif op == TIMEOUT:
                if self.ended is None:
                    self._end("timeout", f"no answer within {seconds:.3g} s")
                self._reply(ENDED)
            elif op == REFUSED:
                if self.ended is None:
                    self._end("invalid-output", "the evaluator refused a reply")
                self._reply(ENDED)
            elif op == CLOSED:
                self._why(number)
                self._reply(ENDED)
            else:
                return  # not the judge's request

    def _spawn(self, count: int) -> None:
        if self.ended is not None:
            self._reply(ENDED)
            return
        made: list[socket.socket] = []
        try:
            if count > MAX_SPAWN or len(self.workers) + count > MAX_WORKERS:
                raise OSError(f"at most {MAX_WORKERS} candidate processes, "
                              f"{MAX_SPAWN} at a time")
            for _ in range(count):
                made.append(self.spawn())
        except OSError as exc:
            for sock in made:
                sock.close()
            self._end("crash", f"could not start another candidate process: {exc}")
            self._reply(ENDED)
            return
        self._reply(OK if self.ended is None else ENDED, made)


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
