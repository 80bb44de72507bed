"""The judge's handle on the candidate: calls its functions, classes and objects in the other
process, as data, and times them by the candidate's own CPU time.

    value = candidate.call("pack_circles", 26)
    policy = candidate.new("Policy", record(scenario))    # a Handle
    action = policy.decide(record(state))                 # or policy.call("decide", ...)
    actions = candidate.batch([(policy_a, "decide", (state_a,)), (policy_b, "decide", ...)])
    first, second = candidate.isolated(2)                 # two more processes, nothing shared
    runs = [first.new("Policy", ...), second.new("Policy", ...)]
    actions = candidate.batch([(run, "decide", (state,)) for run, state in ...])  # one message

Every value that comes back is plain data (numbers, text, bytes, lists, dicts, numpy arrays);
the judge still validates it. Anything that goes wrong on the candidate's side raises
`CandidateError` with a failure kind and a reason naming the call: an exception in the
program (its kind and line), a name it lacks ('import'), no answer in time ('timeout': the
candidate is killed and every later call fails the same way), a reply too large or not data
('invalid-output'), or the candidate process ending ('crash', 'memory', 'timeout').

Each request goes straight to the candidate's process, on a channel whose end the trusted
host passed us; the judge enforces the deadline per request and the size limit per reply
there, and asks the host (`evaluators.candidate_host`) to start processes, to read the CPU
time, to end the candidate, and why a process ended.

`cpu_s` is the candidate's CPU time so far (every thread and child process of it, measured by
the trusted host outside the candidate's reach), read from the host when it is read;
`last_cpu_s` the CPU time since it was last read (read after every request: that request's
charge). Both readings are cumulative: work the candidate does between requests is in the
next one.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from evaluators import channel
from evaluators.candidate_host import (
    CLOSED,
    CPU,
    MAX_JUDGE_FRAME,
    MAX_SPAWN,
    OK,
    REFUSED,
    REPLY,
    REQUEST,
    SPAWN,
    TIMEOUT,
)
from evaluators.candidate_host import FD_VAR as FD_VAR  # where the harness finds the channel
from evaluators.validate import CandidateError

DEFAULT_MAX_REPLY_BYTES = 64 << 20
# Kinds of failure a candidate may report for itself; anything else it claims is a crash.
_CANDIDATE_KINDS = frozenset({"crash", "memory", "sandbox-denied", "import", "syntax",
                              "timeout", "invalid-output"})
# Time kept back from the stage's wall-clock limit so that a candidate that never answers
# becomes this judge's clear result rather than a killed stage.
_MARGIN_S = 0.5


def record(fields: dict[str, Any]) -> channel.Record:
    """A map the candidate reads as an object with attributes (`state.tick`)."""
    return channel.Record(fields)


class Handle:
    """An object living in the candidate process (made by `Candidate.new`)."""

    def __init__(self, candidate: Candidate, number: int, kind: str):
        self._candidate = candidate
        self.number = number
        self.kind = kind

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._candidate._request(
            {"op": "method", "handle": self.number, "name": method, "args": list(args),
             "kwargs": kwargs}, what=f"{self.kind}.{method}()")

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)
        return lambda *args, **kwargs: self.call(method, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<candidate {self.kind} #{self.number}>"


class _Process:
    """The judge's end of one candidate process's channel (passed on by the host)."""

    def __init__(self, fd: int):
        os.set_inheritable(fd, False)
        self.sock = socket.socket(fileno=fd)
        self.reader = channel.FrameReader(self.sock)


class _Link:
    """What every process of one candidate shares: the channel to its trusted host (which
    starts the processes, reads their CPU time and ends them), each process's own channel, the
    failures raised, and whether the candidate ended."""

    def __init__(self, sock: socket.socket, deadline: float | None, max_reply_bytes: int,
                 program: Path | None):
        self.sock = sock
        self.program = program
        self.deadline = deadline  # time.monotonic() by which the stage must be over
        self.max_reply_bytes = max_reply_bytes
        self.processes: list[_Process] = []  # the host sends the first one's first
        self.cpu_ns = 0  # the tree's CPU time as last read from the host
        self.charged_ns = 0  # what the requests before the last were charged, all together
        self.last_cpu_s = 0.0
        self.last_pending = False  # a request was made since `last_cpu_s` was worked out
        self.requests = 0
        self.errors: list[tuple[str, str]] = []  # (kind, reason) of every failure raised
        self.failed: CandidateError | None = None
        # (kind, reason) once the candidate ended, did not answer or broke the channel.
        self.ended: tuple[str, str] | None = None

    def fail(self, kind: str, reason: str, *, sticky: bool = False) -> CandidateError:
        error = CandidateError(kind, reason)
        if len(self.errors) < 20:
            self.errors.append((kind, reason))
        if sticky:
            self.failed = error
            self.ended = (kind, reason)
        return error

    def seconds_left(self) -> float:
        if self.deadline is None:
            return 3600.0
        return max(0.0, self.deadline - time.monotonic() - _MARGIN_S)

    # --- the host ---------------------------------------------------------------------------

    def _host_reply(self, deadline: float) -> tuple[int, dict[str, str], list[int]]:
        """One frame of the host's, with the descriptors that came with it."""
        buffer, fds = bytearray(), []
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise channel.ChannelTimeout("no answer from the candidate's sandbox")
                if not select.select([self.sock], [], [], remaining)[0]:
                    continue
                try:
                    data, got, flags, _ = socket.recv_fds(self.sock, 1 << 16, MAX_SPAWN)
                except OSError as exc:
                    raise channel.ChannelClosed(f"the channel failed: {exc}") from None
                fds += got
                if flags & socket.MSG_CTRUNC:
                    raise channel.ChannelError("malformed", "too many descriptors")
                if not data:
                    raise channel.ChannelClosed()
                buffer += data
                if len(buffer) < channel.HEADER.size + REPLY.size:
                    continue
                (size,) = channel.HEADER.unpack_from(buffer)
                if size > MAX_JUDGE_FRAME or len(buffer) > channel.HEADER.size + size:
                    raise channel.ChannelError("malformed", "a malformed reply of the host's")
                if len(buffer) == channel.HEADER.size + size:
                    break
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        status, cpu_ns, count = REPLY.unpack_from(buffer, channel.HEADER.size)
        if count != len(fds):
            for fd in fds:
                os.close(fd)
            raise channel.ChannelError("malformed", "descriptors missing from the host's reply")
        self.cpu_ns = max(self.cpu_ns, cpu_ns)
        info = _host_info(bytes(buffer[channel.HEADER.size + REPLY.size:])) \
            if status != OK else {}
        return status, info, fds

    def _attach(self) -> None:
        """The first process's channel, sent by the host unasked once it started it."""
        if self.processes:
            return
        try:
            _, _, fds = self._host_reply(time.monotonic() + self.seconds_left() + 5)
        except channel.ChannelError as exc:
            raise self.fail("crash", f"starting the candidate: its sandbox stopped answering "
                                     f"({exc})", sticky=True) from None
        self.processes += [_Process(fd) for fd in fds]
        if not self.processes:
            raise self.fail("crash", "starting the candidate: no process", sticky=True)

    def _ask(self, op: int, number: int = 0, seconds: float = 0.0) \
            -> tuple[int, dict[str, str], list[int]]:
        if not self.processes:
            self._attach()
        channel.send_frame(self.sock, REQUEST.pack(op, number, seconds))
        return self._host_reply(time.monotonic() + self.seconds_left() + 5)

    def control(self, op: int, *, what: str, number: int = 0, seconds: float = 0.0) \
            -> tuple[int, dict[str, str], list[int]]:
        """One request to the host and its reply; a host that stops answering ends the
        candidate ('crash')."""
        try:
            return self._ask(op, number, seconds)
        except (channel.ChannelError, OSError) as exc:
            raise self.fail("crash", f"{what}: the candidate's sandbox stopped answering "
                                     f"({exc})", sticky=True) from None

    def read_cpu(self) -> int:
        """The candidate's CPU time so far, read by the host now (the last reading once the
        host is gone)."""
        if self.sock.fileno() < 0:
            return self.cpu_ns
        try:
            status, info, _ = self._ask(CPU)
        except (channel.ChannelError, OSError, CandidateError):
            return self.cpu_ns  # the host is gone: its last reading stands
        if status != OK and self.failed is None:
            # It ended after its last reply (a refused call the program caught, a process
            # that exited between requests): the judge's verdict may not count it, the
            # harness does (`candidate.ended`).
            self.fail(info["kind"], f"after its last reply: {info['reason']}", sticky=True)
        return self.cpu_ns

    def last_charge(self) -> float:
        """What the last request was charged: the tree's CPU time since this was last worked
        out (work deferred between requests included, so read after every request it is
        that request's charge; read after several, their sum), read from the host when it
        is first asked for after a request."""
        if self.last_pending:
            total = self.read_cpu()
            self.last_cpu_s = max(0, total - self.charged_ns) / 1e9
            self.charged_ns = total
            self.last_pending = False
        return self.last_cpu_s

    def spawn(self, count: int, *, what: str) -> list[int]:
        """`count` more processes, started by the host; their numbers."""
        self._attach()  # the first process is number 0 (the host sends its channel first)
        first = len(self.processes)
        while len(self.processes) - first < count:
            chunk = min(MAX_SPAWN, count - (len(self.processes) - first))
            status, info, fds = self.control(SPAWN, what=what, number=chunk)
            if status != OK or len(fds) != chunk:
                for fd in fds:
                    os.close(fd)
                raise self.fail(info.get("kind", "crash"),
                                f"{what}: {info.get('reason', 'no process started')}",
                                sticky=True)
            self.processes += [_Process(fd) for fd in fds]
        return list(range(first, first + count))

    # --- the processes ----------------------------------------------------------------------

    def exchange(self, parts: Sequence[tuple[int, bytes]], *, what: str) -> list[bytes]:
        """Each request to its process, every reply back, in order."""
        if self.failed is not None:
            raise CandidateError(self.failed.kind, str(self.failed))
        if not self.processes:
            self._attach()
        seconds = self.seconds_left()
        deadline = time.monotonic() + seconds
        processes = [self.processes[number] for number, _ in parts]
        numbers = {id(p): number for p, (number, _) in zip(processes, parts, strict=True)}
        for process, (_, payload) in zip(processes, parts, strict=True):
            try:
                channel.send_frame(process.sock, payload)
            except OSError:
                pass  # its channel is closed: reading says so
        replies: dict[int, bytes] = {}
        waiting = {p.sock.fileno(): p for p in processes}
        reading = processes[0]  # the process whose reply is being read (or awaited)
        try:
            for fd, process in list(waiting.items()):
                if len(waiting) == 1 or process.reader.buffered():
                    reading = process
                    replies[id(process)] = process.reader.frame(
                        max_bytes=self.max_reply_bytes, deadline=deadline, what="reply")
                    del waiting[fd]
            while waiting:
                reading = next(iter(waiting.values()))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise channel.ChannelTimeout("no reply in time")
                ready, _, _ = select.select(list(waiting), [], [], remaining)
                for fd in ready:
                    reading = waiting.pop(fd)
                    replies[id(reading)] = reading.reader.frame(
                        max_bytes=self.max_reply_bytes, deadline=deadline, what="reply",
                        ready=True)
        except channel.ChannelError as exc:
            number = numbers[id(reading)]
            if exc.kind == "timeout":
                self._ended(TIMEOUT, number, seconds, what)
            if exc.kind == "huge":
                self.control(REFUSED, what=what)
                raise self.fail("invalid-output", f"{what}: {exc}", sticky=True) from None
            self._ended(CLOSED, number, seconds, what)
        self.requests += 1
        self.last_pending = True
        return [replies[id(p)] for p in processes]

    def _ended(self, op: int, number: int, seconds: float, what: str) -> NoReturn:
        """The candidate ends: told to the host (TIMEOUT) or asked of it (CLOSED); raises the
        reason, for this and every later call."""
        _, info, _ = self.control(op, what=what, number=number, seconds=seconds)
        if op == TIMEOUT and info["kind"] == "timeout":
            raise self.fail("timeout", f"{what}: {info['reason']}; the candidate was stopped",
                            sticky=True)
        raise self.fail(info["kind"], f"{what}: {info['reason']}", sticky=True)

    def close(self) -> None:
        for process in self.processes:
            process.sock.close()


class Candidate:
    """The proxy over the channel `sock` to the trusted host of the candidate process (and of
    the further processes `isolated` asks it for: each a `Candidate` of the same host), and
    over the channel to each process that the host passes on."""

    def __init__(self, sock: socket.socket, *, deadline: float | None = None,
                 max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES, program: Path | None = None):
        self._link = _Link(sock, deadline, max_reply_bytes, program)
        self._number = 0
        self._loaded: list[str] | None = None

    @classmethod
    def _process(cls, link: _Link, number: int) -> Candidate:
        made = cls.__new__(cls)
        made._link, made._number, made._loaded = link, number, None
        return made

    # What the host measured and what went wrong, for the candidate as a whole (every process
    # of it): `cpu_s` is the sum of all their CPU time.
    # Both are read from the host when they are read (a request to it, not to the candidate).
    cpu_s = property(lambda self: self._link.read_cpu() / 1e9)
    last_cpu_s = property(lambda self: self._link.last_charge())
    requests = property(lambda self: self._link.requests)
    errors = property(lambda self: self._link.errors)
    ended = property(lambda self: self._link.ended)

    @property
    def max_reply_bytes(self) -> int:
        return self._link.max_reply_bytes

    @max_reply_bytes.setter
    def max_reply_bytes(self, value: int) -> None:
        self._link.max_reply_bytes = value

    # --- the judge's calls ---------------------------------------------------------------

    def source(self) -> str:
        """The program's source text (to read, never to run: a static check of the judge's)."""
        if self._link.program is None:
            return ""
        try:
            return self._link.program.read_text(errors="replace")
        except OSError:
            return ""

    def load(self) -> list[str]:
        """Import the program (done by the first call anyway); returns its public names."""
        if self._loaded is None:
            self._loaded = _names(self._request({"op": "load"}, what="importing the program",
                                                load=False))
        return self._loaded

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._request({"op": "call", "name": name, "args": list(args),
                              "kwargs": kwargs}, what=f"{name}()")

    def new(self, name: str, *args: Any, **kwargs: Any) -> Handle:
        number = self._request({"op": "new", "name": name, "args": list(args),
                                "kwargs": kwargs}, what=f"{name}()")
        if type(number) is not int:
            raise self._fail("invalid-output", f"{name}(): the candidate sent no object handle")
        return Handle(self, number, name)

    def keep(self, values: Sequence[channel.Built], kind: str = "object") -> list[Handle]:
        """Objects made in the candidate's process (`Built`: the program's own classes as
        'program:NAME', or public helper code), kept there: one handle each, one message."""
        numbers = self._request({"op": "keep", "values": list(values)},
                                what=f"making {len(values)} {kind}(s)")
        if not isinstance(numbers, list) or len(numbers) != len(values) \
                or any(type(n) is not int for n in numbers):
            raise self._fail("invalid-output", f"making {kind}s: the candidate sent no handles")
        return [Handle(self, n, kind) for n in numbers]

    def isolated(self, count: int) -> list[Candidate]:
        """`count` more candidate processes, each importing the program afresh: runs given one
        each share no state (module globals, caches, patched libraries), so none can learn
        what another saw. The trusted host forks them from itself (never from candidate
        code) under the same limits, seccomp filter, cgroup and uid; the CPU time of all of
        them is charged, and the end of any one ends the candidate. Each is a `Candidate`;
        `batch` takes handles of several of them and sends one message for all."""
        if count <= 0:
            return []
        link = self._link
        if link.failed is not None:
            raise CandidateError(link.failed.kind, str(link.failed))
        numbers = link.spawn(count, what=f"starting {count} candidate processes")
        made = [Candidate._process(link, number) for number in numbers]
        load = channel.encode({"op": "load"})
        replies = link.exchange([(p._number, load) for p in made], what="importing the program")
        for process, body in zip(made, replies, strict=True):
            process._loaded = _names(process._answer(body, what="importing the program"))
        return made

    def batch(self, calls: Sequence[tuple[Handle | None, str, Sequence[Any]]]) -> list[Any]:
        """Many independent calls in one message (e.g. one step of many runs): handle (None
        for a module-level function of this process), name, positional arguments. Handles
        of several processes (`isolated`) are fine: each process gets its calls, all in one
        message, and they run side by side. Returns the results in order; the first call
        that fails raises, naming it."""
        what = f"a batch of {len(calls)} calls"
        groups: dict[int, tuple[Candidate, list[int]]] = {}
        for index, (handle, _, _) in enumerate(calls):
            process = self if handle is None else handle._candidate
            if process._link is not self._link:
                raise ValueError(f"{what}: a handle of another candidate")
            groups.setdefault(process._number, (process, []))[1].append(index)
        if len(groups) <= 1:
            process = next(iter(groups.values()))[0] if groups else self
            return process._batch(calls, list(range(len(calls))), what)
        for process, _ in groups.values():
            process.load()
        parts = []
        for number, (_, indices) in groups.items():
            parts.append((number, self._encode(_batch_request(calls, indices), what)))
        replies = self._link.exchange(parts, what=what)
        results: list[Any] = [None] * len(calls)
        failures = []
        for (process, indices), body in zip(groups.values(), replies, strict=True):
            try:
                got = process._answer(body, what=what, batch=calls, indices=indices)
            except CandidateError as exc:
                failures.append(exc)
                continue
            process._check_results(got, len(indices), what)
            for index, value in zip(indices, got, strict=True):
                results[index] = value
        if failures:  # the first call that failed, in the batch's order
            raise min(failures, key=lambda e: (e.index is None, e.index or 0))
        return results

    # --- the channel ---------------------------------------------------------------------

    def _batch(self, calls: Sequence[Any], indices: list[int], what: str) -> list[Any]:
        results = self._request(_batch_request(calls, indices), what=what, batch=calls,
                                indices=indices)
        self._check_results(results, len(indices), what)
        return results

    def _check_results(self, results: Any, count: int, what: str) -> None:
        if not isinstance(results, list) or len(results) != count:
            raise self._fail("invalid-output", f"{what}: the candidate sent "
                                               f"{_describe(results)} instead of "
                                               f"{count} results")

    def _fail(self, kind: str, reason: str, *, sticky: bool = False) -> CandidateError:
        return self._link.fail(kind, reason, sticky=sticky)

    @staticmethod
    def _encode(message: dict[str, Any], what: str) -> bytes:
        try:
            return channel.encode(message)
        except (TypeError, ValueError, OverflowError) as exc:
            # The judge's own arguments: its bug, not the candidate's.
            raise TypeError(f"{what}: the arguments are not plain data: {exc}") from None

    def _request(self, message: dict[str, Any], *, what: str, load: bool = True,
                 batch: Sequence[Any] | None = None, indices: list[int] | None = None) -> Any:
        if self._link.failed is not None:
            raise CandidateError(self._link.failed.kind, str(self._link.failed))
        if load:
            self.load()
        payload = self._encode(message, what)
        (body,) = self._link.exchange([(self._number, payload)], what=what)
        return self._answer(body, what=what, batch=batch, indices=indices)

    def _answer(self, body: bytes, *, what: str, batch: Sequence[Any] | None = None,
                indices: list[int] | None = None) -> Any:
        """The value of one process's reply; its failure raised as CandidateError (for a
        batch, `index` says which call of `batch` failed: `indices` maps the process's
        calls to the batch's)."""
        try:
            reply = channel.decode(body)
        except channel.ChannelError as exc:
            raise self._fail("invalid-output", f"{what}: {exc}") from None
        if not isinstance(reply, dict) or not (("ok" in reply) ^ ("error" in reply)):
            raise self._fail("invalid-output", f"{what}: the candidate sent a malformed reply "
                                               f"({_describe(reply)})")
        if "ok" in reply:
            return reply["ok"]
        error = reply["error"]
        kind = error.get("kind") if isinstance(error, dict) else None
        reason = error.get("reason") if isinstance(error, dict) else None
        kind = kind if kind in _CANDIDATE_KINDS else "crash"
        reason = str(reason)[:500] if isinstance(reason, str) else "no reason given"
        index = reply.get("index")
        if indices is not None:
            if len(indices) == 1:  # the process's one call failed, whatever it says
                index = 0
            index = indices[index] if type(index) is int and 0 <= index < len(indices) \
                else None
        in_batch = batch is not None and type(index) is int and 0 <= index < len(batch)
        if in_batch:
            what = f"{batch[index][1]}() (call {index + 1} of the batch)"
        error = self._fail(kind, f"{what} raised: {reason}" if kind == "crash" else
                           f"{what}: {reason}")
        error.index = index if in_batch else None  # which call of a batch failed
        error.detail = reason  # the candidate's own account, without the call's name
        raise error


def _names(names: Any) -> list[str]:
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def _batch_request(calls: Sequence[tuple[Handle | None, str, Sequence[Any]]],
                   indices: list[int]) -> dict[str, Any]:
    return {"op": "batch", "calls": [
        [None if calls[i][0] is None else calls[i][0].number, calls[i][1], list(calls[i][2])]
        for i in indices]}


def _describe(value: Any) -> str:
    return type(value).__name__


def _host_info(body: bytes) -> dict[str, str]:
    try:
        info = channel.decode(body)
    except channel.ChannelError:
        info = None
    if not isinstance(info, dict):
        return {"kind": "crash", "reason": "the candidate ended"}
    kind = info.get("kind") if info.get("kind") in _CANDIDATE_KINDS else "crash"
    return {"kind": kind, "reason": str(info.get("reason", ""))[:500]}


def stage_deadline() -> float | None:
    """When the stage must be over (time.monotonic, a system-wide clock), as the executor set
    it when it started the sandbox; None outside one."""
    raw = os.environ.get("EVOLVE_STAGE_DEADLINE")
    try:
        deadline = float(raw) if raw else math.nan
    except ValueError:
        return None
    return deadline if math.isfinite(deadline) else None


@contextlib.contextmanager
def local_candidate(program: str | Path, *, deadline: float | None = None,
                    env: dict[str, str] | None = None) -> Iterator[Candidate]:
    """A candidate process on this machine without a sandbox (scripts, benchmarks, tests of a
    judge; the sandbox's executors start it sandboxed instead); `env` adds to its
    environment."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVOLVE_")}
    env.update(extra)
    root = Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    proc = subprocess.Popen([sys.executable, "-m", "evaluators.candidate_host",
                             str(theirs.fileno()), str(Path(program).resolve())],
                            pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL)
    theirs.close()
    candidate = Candidate(ours, deadline=deadline, program=Path(program).resolve())
    try:
        yield candidate
    finally:
        candidate._link.close()
        ours.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
