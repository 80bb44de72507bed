"""The candidate process: imports the evolved program and nothing of the problem, then answers
the judge's requests, on a channel whose other end the trusted host
(`evaluators.candidate_host`) passed to the judge.

Everything here runs with the candidate's code in the same process, so nothing it says is
trusted: the host times it from outside and the judge validates every value it sends. It only
turns requests into calls of the program's functions, classes and objects, and the results
into data (`evaluators.channel`); a result that is not data becomes an error reply.

Requests (maps): {"op": "load"}; {"op": "call", "name", "args", "kwargs"}; {"op": "new",
"name", "args", "kwargs"} (returns a handle number); {"op": "keep", "values"} (built objects kept, their
handle numbers returned); {"op": "method", "handle", "name", "args", "kwargs"}; {"op": "batch", "calls": [[handle or None, name, args], ...]} (the results, in
order; stops at the first error and says which). Replies: {"ok": value} or {"error": {"kind",
"reason"}, "index"?}.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from pathlib import Path
from typing import Any

from evaluators import channel
from evaluators.validate import classify_exception

MODULE_NAME = channel.PROGRAM_MODULE
_MAX_REQUEST_BYTES = 1 << 31


class _Missing(Exception):
    """The judge asked for a name the program does not define."""


def _error(exc: BaseException, program: Path) -> dict[str, str]:
    if isinstance(exc, _Missing):
        return {"kind": "import", "reason": str(exc)}
    if isinstance(exc, SyntaxError):
        return {"kind": "syntax", "reason": f"syntax error: line {exc.lineno}: {exc.msg}"}
    kind, reason = classify_exception(exc, program)
    if kind == "evaluator-error":  # nothing but the candidate's code runs here
        kind = "crash"
    return {"kind": kind, "reason": reason}


class Worker:
    def __init__(self, program: Path):
        self.program = program
        self.module: Any = None
        self.handles: dict[int, Any] = {}
        # Methods a batch called before, by (handle, name): a step of many runs repeats them.
        self._bound: dict[tuple[Any, str], Any] = {}

    def load(self) -> list[str]:
        source = importlib.util.decode_source(self.program.read_bytes())
        compile(source, str(self.program), "exec")  # a syntax error names its line, not ours
        spec = importlib.util.spec_from_file_location(MODULE_NAME, self.program)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {self.program.name}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[MODULE_NAME] = module
        spec.loader.exec_module(module)
        self.module = module
        return sorted(name for name in vars(module) if not name.startswith("_"))

    def _target(self, handle: Any, name: str) -> Any:
        if not isinstance(name, str):
            raise TypeError("a name must be text")
        if handle is None:
            fn = getattr(self.module, name, None)
            if not callable(fn):
                raise _Missing(f"the program defines no function or class '{name}' "
                               f"(the evaluator calls it)")
            return fn
        obj = self.handles.get(handle)
        if obj is None:
            raise _Missing(f"no object with handle {handle!r}")
        fn = getattr(obj, name, None)
        if not callable(fn):
            raise _Missing(f"the program's {type(obj).__name__} has no method '{name}' "
                           f"(the evaluator calls it)")
        return fn

    def handle(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            return {"error": {"kind": "crash", "reason": "malformed request"}}
        op = request.get("op")
        args, kwargs = request.get("args") or [], request.get("kwargs") or {}
        try:
            if op == "load":
                return {"ok": self.load()}
            if self.module is None:
                raise _Missing("the program is not loaded")
            if op == "call":
                return {"ok": self._target(None, request["name"])(*args, **kwargs)}
            if op == "new":
                obj = self._target(None, request["name"])(*args, **kwargs)
                number = len(self.handles) + 1
                self.handles[number] = obj
                return {"ok": number}
            if op == "method":
                return {"ok": self._target(request["handle"], request["name"])(*args, **kwargs)}
            if op == "keep":
                # Objects made in this process from the request (built arguments): kept, and
                # referred to by handle from then on.
                numbers = []
                for value in request["values"]:
                    number = len(self.handles) + 1
                    self.handles[number] = value
                    numbers.append(number)
                return {"ok": numbers}
            if op == "batch":
                results = []
                bound = self._bound
                for index, (handle, name, call_args) in enumerate(request["calls"]):
                    try:
                        fn = bound.get((handle, name))
                        if fn is None:
                            fn = bound[handle, name] = self._target(handle, name)
                        results.append(fn(*call_args))
                    except BaseException as exc:  # noqa: BLE001 - reported, with its place
                        return {"error": _error(exc, self.program), "index": index}
                return {"ok": results}
            return {"error": {"kind": "crash", "reason": f"unknown request {op!r}"}}
        except BaseException as exc:  # noqa: BLE001 - the candidate's failure is a reply
            return {"error": _error(exc, self.program)}


def serve(program: Path, sock: socket.socket) -> None:
    """Answer requests until the judge closes the channel."""
    worker = Worker(program)
    reader = channel.FrameReader(sock)
    while True:
        try:
            data = reader.frame(max_bytes=_MAX_REQUEST_BYTES, what="request")
        except channel.ChannelError:
            return
        try:
            request = channel.decode(data, records="attributes")
        except BaseException as exc:  # noqa: BLE001 - a factory of a built argument failed
            reply: dict[str, Any] = {"error": _error(exc, program)}
        else:
            reply = worker.handle(request)
        try:
            payload = channel.encode(reply)
        except Exception as exc:  # noqa: BLE001 - whatever the object does when read
            payload = channel.encode({"error": {
                "kind": "invalid-output",
                "reason": f"the program returned something that is not plain data: {exc}"}})
        channel.send_frame(sock, payload)


def main(program: Path, fd: int) -> None:
    """The worker's body after the host forked it and dropped its privileges; never returns."""
    code = 0
    try:
        serve(program, socket.socket(fileno=fd))
    except BaseException:  # noqa: BLE001 - a broken channel ends the candidate
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001
        pass
    os._exit(code)
