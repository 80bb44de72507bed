"""The one channel between the judge and the candidate: data only.

Messages are MessagePack (a data-only format: decoding never runs code or builds objects with
behaviour, unlike pickle) of plain values: None, bool, int, float, str, bytes, lists (tuples are
sent as lists) and maps, plus two extension types:
- numpy arrays of a numeric dtype (bool, signed/unsigned integers, floats), as dtype, shape and
  the raw bytes; decoded into a fresh writable array, its size checked against its shape;
- records: a map whose reader sees attributes (`state.tick`), so a candidate written against
  objects keeps its interface; the judge always decodes them as plain dicts;
- built objects, judge to candidate only: "call the public factory `module:name` with these
  plain arguments" (the problem's own helper class, e.g. a workload with its makespan
  method, or `torch:as_tensor`), done by the candidate's process when it reads the message.
  Nothing of the judge's crosses: the candidate's process imports that public code itself.
  The judge refuses them in replies.

Each frame is a 4-byte big-endian length and the payload; a reader refuses a frame above its
size limit before reading the payload.
"""

from __future__ import annotations

import select
import socket
import struct
import sys
import time
from types import SimpleNamespace
from typing import Any

import msgpack

EXT_ARRAY = 1
EXT_RECORD = 2
EXT_BUILT = 3
_HEADER = struct.Struct(">I")
HEADER = _HEADER  # a frame's length, before its payload
MAX_FRAME_BYTES = (1 << 32) - 1
# numpy dtype strings an array may have on the channel (byte order given explicitly).
_ARRAY_KINDS = frozenset("biuf")


class ChannelError(Exception):
    """A frame that is too large, malformed, or not data; `kind` says which."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class ChannelClosed(ChannelError):
    def __init__(self, message: str = "the other end closed the channel"):
        super().__init__("closed", message)


class ChannelTimeout(ChannelError):
    def __init__(self, message: str):
        super().__init__("timeout", message)


class Record(dict):
    """A map sent as a record: the candidate reads its fields as attributes."""


class Built:
    """`factory(*args)` made in the candidate's process: `factory` is 'module:name' (a dotted
    name within the module is allowed; module 'program' is the candidate's program), the
    arguments plain data (built objects included)."""

    def __init__(self, factory: str, *args: Any):
        if not isinstance(factory, str) or factory.count(":") != 1:
            raise ValueError(f"a factory is named 'module:name', got {factory!r}")
        self.factory, self.args = factory, list(args)


# The candidate's own program, as the candidate worker loaded it (factories named
# 'program:NAME' resolve there).
PROGRAM_MODULE = "candidate_program"


def _build(body: bytes) -> Any:
    import importlib

    factory, args = decode(body, records="attributes")
    module_name, name = factory.split(":")
    if module_name == "program":
        target: Any = sys.modules[PROGRAM_MODULE]
    else:
        target = importlib.import_module(module_name)
    for part in name.split("."):
        target = getattr(target, part)
    return target(*args)


def _numpy() -> Any:
    return sys.modules.get("numpy")


def _default(value: Any) -> Any:
    torch = sys.modules.get("torch")
    if torch is not None and issubclass(type(value), torch.Tensor):  # the candidate's tensors
        value = value.detach().cpu().numpy()
    np = _numpy()
    if np is not None:
        if issubclass(type(value), np.ndarray):
            if value.dtype.kind not in _ARRAY_KINDS:
                raise TypeError(f"a numpy array of dtype {value.dtype} is not plain data "
                                f"(use bool, integer or float arrays)")
            array = np.ascontiguousarray(value)
            body = msgpack.packb([array.dtype.str, list(array.shape), array.tobytes()])
            return msgpack.ExtType(EXT_ARRAY, body)
        if issubclass(type(value), np.generic) and value.dtype.kind in _ARRAY_KINDS:
            return value.item()
    if issubclass(type(value), Record):
        return msgpack.ExtType(EXT_RECORD, encode(dict(dict.items(value))))
    if type(value) is Built:
        return msgpack.ExtType(EXT_BUILT, encode([value.factory, value.args]))

    # Subclasses of the plain types (strict packing sends only exact types as they are): their
    # genuine contents through the base type's own methods, whatever they override. By the
    # real type: isinstance() believes an object that claims `__class__ = int`.
    kind = type(value)
    if issubclass(kind, tuple):
        return list(tuple.__iter__(value))
    if issubclass(kind, list):
        return list(list.__iter__(value))
    if issubclass(kind, dict):
        return dict(dict.items(value))
    if issubclass(kind, int):
        return int.__int__(value)
    if issubclass(kind, float):
        return float.__float__(value)
    if issubclass(kind, str):
        return str.__str__(value)
    if issubclass(kind, bytes):
        return bytes(memoryview(value))
    if kind is SimpleNamespace:  # a record the candidate got and sends back
        return dict(vars(value))
    raise TypeError(f"{kind.__name__} is not plain data (send numbers, strings, bytes, "
                    f"lists, dicts or numpy arrays)")


def encode(value: Any) -> bytes:
    """`value` as MessagePack; TypeError names the first part that is not plain data."""
    return msgpack.packb(value, default=_default, use_bin_type=True, datetime=False,
                         strict_types=True)


def _decode_array(body: bytes) -> Any:
    np = _numpy()
    if np is None:
        import numpy as np  # an array arrived: the reader needs numpy to hold it
    try:
        dtype_str, shape, raw = msgpack.unpackb(body, raw=False)
        dtype = np.dtype(dtype_str)
        shape = tuple(int(n) for n in shape)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"malformed array: {exc}") from None
    if dtype.kind not in _ARRAY_KINDS or any(n < 0 for n in shape) or not isinstance(raw, bytes):
        raise ValueError(f"malformed array of dtype {dtype_str!r} and shape {shape}")
    count = 1
    for n in shape:
        count *= n
    if count * dtype.itemsize != len(raw):
        raise ValueError(f"array data of {len(raw)} bytes does not fit shape {shape} "
                         f"of {dtype}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def decode(data: bytes, *, records: str = "dict") -> Any:
    """The value in `data`. `records`: 'dict' (the judge: plain maps) or 'attributes' (the
    candidate: objects whose fields read as attributes). Raises ChannelError('malformed')."""
    def ext_hook(code: int, body: bytes) -> Any:
        if code == EXT_ARRAY:
            return _decode_array(body)
        if code == EXT_RECORD:
            fields = decode(body, records=records)
            if not isinstance(fields, dict) or not all(isinstance(k, str) for k in fields):
                raise ValueError("a record must be a map with text keys")
            return SimpleNamespace(**fields) if records == "attributes" else fields
        if code == EXT_BUILT and records == "attributes":
            return _build(body)
        raise ValueError(f"unknown extension type {code}")

    try:
        return msgpack.unpackb(data, ext_hook=ext_hook, raw=False, strict_map_key=False,
                               use_list=True)
    except ChannelError:
        raise
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        raise ChannelError("malformed", f"malformed message: {type(exc).__name__}: {exc}") \
            from None


# --- frames -------------------------------------------------------------------------------

def send_frame(sock: socket.socket, payload: bytes) -> None:
    if len(payload) > MAX_FRAME_BYTES:
        raise ChannelError("huge", f"a message of {len(payload)} bytes is too large")
    sock.sendall(_HEADER.pack(len(payload)) + payload)


def _recv_exact(sock: socket.socket, size: int, deadline: float | None, what: str) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChannelTimeout(f"no complete {what} within the time allowed")
            ready, _, _ = select.select([sock], [], [], remaining)
            if not ready:
                continue
        try:
            n = sock.recv_into(view[got:], size - got)
        except BlockingIOError:
            continue
        except OSError as exc:
            raise ChannelClosed(f"the channel failed: {exc}") from None
        if n == 0:
            raise ChannelClosed()
        got += n
    return bytes(buffer)


def recv_frame(sock: socket.socket, *, max_bytes: int, deadline: float | None = None,
               what: str = "message") -> bytes:
    """One frame's payload; ChannelError('huge') for a frame above `max_bytes` (its payload is
    not read), ChannelTimeout when `deadline` (time.monotonic) passes first."""
    (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size, deadline, what))
    if size > max_bytes:
        raise ChannelError("huge", f"the {what} is {size} bytes, above the limit of "
                                   f"{max_bytes} bytes")
    return _recv_exact(sock, size, deadline, what)


_CHUNK = 1 << 16


class FrameReader:
    """Frames from one socket, read through a buffer: a small frame (header and payload) comes
    in one system call rather than two, and a reader told its socket is ready asks nothing
    more of the kernel first. Bytes past the frame (the peer's next one, sent early) stay for
    the next read. The same limits as `recv_frame`: a frame above `max_bytes` is refused on
    its header, before its payload is read in full."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._buffer = bytearray()

    def _fill(self, deadline: float | None, what: str, ready: bool) -> None:
        """At least one more byte in the buffer."""
        while True:
            if deadline is not None and not ready:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ChannelTimeout(f"no complete {what} within the time allowed")
                if not select.select([self.sock], [], [], remaining)[0]:
                    continue
            ready = False
            try:
                chunk = self.sock.recv(_CHUNK)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise ChannelClosed(f"the channel failed: {exc}") from None
            if not chunk:
                raise ChannelClosed()
            self._buffer += chunk
            return

    def buffered(self) -> bool:
        """Whether bytes of a frame were read already (a select would not show them)."""
        return bool(self._buffer)

    def frame(self, *, max_bytes: int, deadline: float | None = None, what: str = "message",
              ready: bool = False) -> bytes:
        """One frame's payload (`ready`: the socket is known to be readable now)."""
        buffer = self._buffer
        while len(buffer) < _HEADER.size:
            self._fill(deadline, what, ready)
            ready = False
        (size,) = _HEADER.unpack_from(buffer)
        if size > max_bytes:
            raise ChannelError("huge", f"the {what} is {size} bytes, above the limit of "
                                       f"{max_bytes} bytes")
        end = _HEADER.size + size
        if len(buffer) >= end:
            with memoryview(buffer) as view:
                payload = bytes(view[_HEADER.size:end])
            del buffer[:end]
            return payload
        # A large frame: the rest straight into a buffer of its size.
        have = buffer[_HEADER.size:]
        buffer.clear()
        rest = _recv_exact(self.sock, size - len(have), deadline, what)
        return bytes(have) + rest
