"""The judge's handle on the candidate: calls its functions, classes and objects in the other
process, as data, and times them by the candidate's own CPU time.

    value = candidate.call("pack_circles", 26)
    policy = candidate.new("Policy", record(scenario))    # a Handle
    action = policy.decide(record(state))                 # or policy.call("decide", ...)
    actions = candidate.batch([(policy_a, "decide", (state_a,)), (policy_b, "decide", ...)])

Every value that comes back is plain data (numbers, text, bytes, lists, dicts, numpy arrays);
the judge still validates it. Anything that goes wrong on the candidate's side raises
`CandidateError` with a failure kind and a reason naming the call: an exception in the
program (its kind and line), a name it lacks ('import'), no answer in time ('timeout': the
candidate is killed and every later call fails the same way), a reply too large or not data
('invalid-output'), or the candidate process ending ('crash', 'memory', 'timeout').

`cpu_s` is the candidate's CPU time so far (every thread and child process of it, measured by
the trusted host outside the candidate's reach); `last_cpu_s` what the last request was
charged. Work the candidate does between requests is charged to the next one.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from evaluators import channel
from evaluators.candidate_host import ENDED, HUGE, OK, REPLY, REQUEST, TIMEOUT
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


class Candidate:
    """The proxy over the channel `sock` to the trusted host of the candidate process."""

    def __init__(self, sock: socket.socket, *, deadline: float | None = None,
                 max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES, program: Path | None = None):
        self._sock = sock
        self._program = program
        self._deadline = deadline  # time.monotonic() by which the stage must be over
        self.max_reply_bytes = max_reply_bytes
        self.cpu_s = 0.0
        self.last_cpu_s = 0.0
        self.requests = 0
        self.errors: list[tuple[str, str]] = []  # (kind, reason) of every failure raised
        self._loaded: list[str] | None = None
        self._failed: CandidateError | None = None
        # (kind, reason) once the candidate ended, did not answer or broke the channel.
        self.ended: tuple[str, str] | None = None

    # --- the judge's calls ---------------------------------------------------------------

    def source(self) -> str:
        """The program's source text (to read, never to run: a static check of the judge's)."""
        if self._program is None:
            return ""
        try:
            return self._program.read_text(errors="replace")
        except OSError:
            return ""

    def load(self) -> list[str]:
        """Import the program (done by the first call anyway); returns its public names."""
        if self._loaded is None:
            names = self._request({"op": "load"}, what="importing the program", load=False)
            self._loaded = [n for n in names if isinstance(n, str)] \
                if isinstance(names, list) else []
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

    def batch(self, calls: Sequence[tuple[Handle | None, str, Sequence[Any]]]) -> list[Any]:
        """Many independent calls in one message (e.g. one step of many runs): handle (None
        for a module-level function), name, positional arguments. Returns their results in
        order; the first call that fails raises, naming it."""
        request = {"op": "batch", "calls": [
            [None if h is None else h.number, name, list(args)] for h, name, args in calls]}
        what = f"a batch of {len(calls)} calls"
        results = self._request(request, what=what, batch=calls)
        if not isinstance(results, list) or len(results) != len(calls):
            raise self._fail("invalid-output", f"{what}: the candidate sent "
                                               f"{_describe(results)} instead of "
                                               f"{len(calls)} results")
        return results

    # --- the channel ---------------------------------------------------------------------

    def _fail(self, kind: str, reason: str, *, sticky: bool = False) -> CandidateError:
        error = CandidateError(kind, reason)
        if len(self.errors) < 20:
            self.errors.append((kind, reason))
        if sticky:
            self._failed = error
            self.ended = (kind, reason)
        return error

    def _seconds_left(self) -> float:
        if self._deadline is None:
            return 3600.0
        return max(0.0, self._deadline - time.monotonic() - _MARGIN_S)

    def _request(self, message: dict[str, Any], *, what: str, load: bool = True,
                 batch: Sequence[Any] | None = None) -> Any:
        if self._failed is not None:
            raise CandidateError(self._failed.kind, str(self._failed))
        if load:
            self.load()
        try:
            payload = channel.encode(message)
        except (TypeError, ValueError, OverflowError) as exc:
            # The judge's own arguments: its bug, not the candidate's.
            raise TypeError(f"{what}: the arguments are not plain data: {exc}") from None
        seconds = self._seconds_left()
        try:
            channel.send_frame(self._sock, REQUEST.pack(seconds, self.max_reply_bytes)
                               + payload)
            frame = channel.recv_frame(self._sock, max_bytes=self.max_reply_bytes + REPLY.size
                                       + (1 << 16), deadline=time.monotonic() + seconds + 5,
                                       what=f"reply to {what}")
        except channel.ChannelError as exc:
            raise self._fail("crash", f"{what}: the candidate's sandbox stopped answering "
                                      f"({exc})", sticky=True) from None
        status, cpu_ns = REPLY.unpack_from(frame)
        self.requests += 1
        self.last_cpu_s = cpu_ns / 1e9
        self.cpu_s += self.last_cpu_s
        body = frame[REPLY.size:]
        if status != OK:
            info = _host_info(body)
            if status == TIMEOUT:
                raise self._fail("timeout", f"{what}: {info['reason']}; the candidate was "
                                            f"stopped", sticky=True)
            if status == HUGE:
                raise self._fail("invalid-output", f"{what}: {info['reason']}", sticky=True)
            if status == ENDED:
                raise self._fail(info["kind"], f"{what}: {info['reason']}", sticky=True)
            raise self._fail("crash", f"{what}: unknown host status {status}", sticky=True)
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
        in_batch = batch is not None and type(index) is int and 0 <= index < len(batch)
        if in_batch:
            what = f"{batch[index][1]}() (call {index + 1} of the batch)"
        error = self._fail(kind, f"{what} raised: {reason}" if kind == "crash" else
                           f"{what}: {reason}")
        error.index = index if in_batch else None  # which call of a batch failed
        error.detail = reason  # the candidate's own account, without the call's name
        raise error


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
    try:
        yield Candidate(ours, deadline=deadline, program=Path(program).resolve())
    finally:
        ours.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
