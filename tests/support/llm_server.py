"""A scripted OpenAI-compatible HTTP server on 127.0.0.1 for tests at the LLM boundary.

Real HTTP, real sockets: litellm talks to it exactly as it talks to a provider, through
model ``openai/<anything>`` with ``api_base=server.base_url`` and any dummy api key.

    with ScriptedLLMServer([RateLimited(), Reply("hello")]) as server:
        litellm.completion(**server.litellm_kwargs(), messages=[...])
        assert len(server.chat_requests) == 2

A script is a list whose items are steps or callables ``(request_json) -> step`` (consumed one
per request, in order), or a single callable used for every request (so a test can answer based
on the prompt). When a list runs out, ``default`` answers (a step or a callable); without a
default the server answers 500 "script exhausted" so an unexpected extra call is visible.

Steps: ``Reply`` (content, finish_reason, usage), ``HTTPError`` (any status and body, headers
such as retry-after), ``RateLimited`` (429), ``Hang`` (answers nothing for a long time),
``Malformed`` (a 200 whose body is not JSON), ``Drop`` (closes the connection without a reply).
Also served: ``POST /v1/embeddings`` (deterministic vectors from a hash of the text),
``GET /v1/models`` and Ollama's ``GET /api/tags`` (so probes can be pointed at it).
"""

from __future__ import annotations

import hashlib
import json
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Reply:
    """A normal chat completion. ``content=""`` gives an empty reply."""

    content: str = "ok"
    finish_reason: str = "stop"
    prompt_tokens: int = 11
    completion_tokens: int = 7
    include_usage: bool = True
    delay_s: float = 0.0
    cached_tokens: int | None = None  # prompt tokens served from the provider's cache


@dataclass
class HTTPError:
    status: int = 500
    body: str | dict[str, Any] = field(
        default_factory=lambda: {"error": {"message": "scripted server error",
                                           "type": "server_error", "code": None}})
    headers: dict[str, str] = field(default_factory=dict)


def RateLimited(retry_after: float = 0.0) -> HTTPError:  # noqa: N802 - reads like a step type
    """A 429 with a retry-after header, as providers send it."""
    return HTTPError(
        status=429,
        body={"error": {"message": "Rate limit reached (scripted)", "type": "rate_limit_error",
                        "code": "rate_limit_exceeded"}},
        headers={"retry-after": f"{retry_after:g}"})


@dataclass
class Hang:
    """Answer nothing for ``seconds`` (default: until the server stops), then close."""

    seconds: float = 3600.0


@dataclass
class Malformed:
    """A 200 response whose body is not valid JSON."""

    body: str = '{"id": "chatcmpl-broken", "choices": [ {"message": '
    status: int = 200


@dataclass
class Drop:
    """Close the connection without sending any response."""


Step = Reply | HTTPError | Hang | Malformed | Drop
StepSource = Step | Callable[[dict[str, Any]], Step]


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    json: Any
    received_at: float


def embedding_vector(text: str, dim: int = 16) -> list[float]:
    """A deterministic unit-free vector for ``text`` (same text, same vector)."""
    digest = b""
    counter = 0
    while len(digest) < dim * 4:
        digest += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    ints = struct.unpack(f"<{dim}I", digest[: dim * 4])
    return [(value / 0xFFFFFFFF) * 2.0 - 1.0 for value in ints]


class ScriptedLLMServer:
    """OpenAI-compatible server with scripted answers, on an ephemeral port of 127.0.0.1."""

    def __init__(self, script: list[StepSource] | Callable[[dict[str, Any]], Step] | None = None,
                 *, default: StepSource | None = None, model: str = "scripted-model",
                 embedding_dim: int = 16) -> None:
        self._script: list[StepSource] | None
        self._responder: Callable[[dict[str, Any]], Step] | None
        if callable(script):
            self._script, self._responder = None, script
        else:
            self._script, self._responder = list(script or []), None
        self.default = default
        self.model = model
        self.embedding_dim = embedding_dim
        self.requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> ScriptedLLMServer:
        handler = _make_handler(self)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        name="scripted-llm-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # releases Hang steps
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ScriptedLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests use --------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._port is not None, "server not started"
        return self._port  # kept after stop(), so URLs stay printable

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def chat_requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def litellm_kwargs(self, model: str | None = None) -> dict[str, Any]:
        """Arguments that make litellm call this server."""
        return {"model": model or f"openai/{self.model}", "api_base": self.base_url,
                "api_key": "sk-scripted-test"}

    def push(self, *steps: StepSource) -> None:
        """Append steps to a list script while the server runs."""
        with self._lock:
            if self._script is None:
                raise TypeError("push() needs a list script, not a callable responder")
            self._script.extend(steps)

    # -- internals -------------------------------------------------------------------------

    def _next_step(self, request_json: dict[str, Any]) -> Step:
        with self._lock:
            if self._responder is not None:
                source: StepSource | None = self._responder
            elif self._script:
                source = self._script.pop(0)
            else:
                source = self.default
        if source is None:
            return HTTPError(500, {"error": {"message": "scripted server: script exhausted",
                                             "type": "server_error"}})
        return source(request_json) if callable(source) else source

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self.requests.append(request)


def _completion_body(step: Reply, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"chatcmpl-scripted-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": step.finish_reason,
                     "message": {"role": "assistant", "content": step.content}}],
    }
    if step.include_usage:
        body["usage"] = {"prompt_tokens": step.prompt_tokens,
                         "completion_tokens": step.completion_tokens,
                         "total_tokens": step.prompt_tokens + step.completion_tokens}
        if step.cached_tokens is not None:
            body["usage"]["prompt_tokens_details"] = {"cached_tokens": step.cached_tokens}
    return body


def _make_handler(server: ScriptedLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass  # keep test output clean

        def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None,
                       ) -> None:
            raw = payload if isinstance(payload, str) else json.dumps(payload)
            data = raw.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

        def _read_json(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                return json.loads(raw) if raw else None
            except json.JSONDecodeError:
                return {"_unparsed": raw.decode(errors="replace")}

        def _record(self, body: Any) -> None:
            server._record(ReceivedRequest(self.command, self.path, dict(self.headers), body,
                                           time.monotonic()))

        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            self._record(None)
            if self.path.rstrip("/").endswith("/models"):
                self._send_json(200, {"object": "list", "data": [
                    {"id": server.model, "object": "model", "owned_by": "scripted"}]})
            elif self.path.rstrip("/") == "/api/tags":
                self._send_json(200, {"models": [{"name": server.model, "model": server.model}]})
            else:
                self._send_json(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:  # noqa: N802 - stdlib naming
            body = self._read_json()
            self._record(body)
            path = self.path.rstrip("/")
            if path.endswith("/embeddings"):
                self._embeddings(body or {})
            elif path.endswith("/chat/completions"):
                self._chat(body or {})
            else:
                self._send_json(404, {"error": {"message": f"no route {self.path}"}})

        def _embeddings(self, body: dict[str, Any]) -> None:
            inputs = body.get("input", [])
            texts = [inputs] if isinstance(inputs, str) else list(inputs)
            data = [{"object": "embedding", "index": i,
                     "embedding": embedding_vector(str(t), server.embedding_dim)}
                    for i, t in enumerate(texts)]
            tokens = sum(len(str(t).split()) for t in texts)
            self._send_json(200, {"object": "list", "data": data, "model": server.model,
                                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

        def _chat(self, body: dict[str, Any]) -> None:
            if body.get("stream"):
                self._send_json(400, {"error": {"message": "scripted server: streaming is not "
                                                           "supported", "type": "invalid_request"}})
                return
            step = server._next_step(body)
            if isinstance(step, Reply):
                if step.delay_s:
                    server._stop.wait(step.delay_s)
                self._send_json(200, _completion_body(step, body.get("model", server.model)))
            elif isinstance(step, HTTPError):
                self._send_json(step.status, step.body, step.headers)
            elif isinstance(step, Malformed):
                self._send_json(step.status, step.body)
            elif isinstance(step, Hang):
                server._stop.wait(step.seconds)
                self.close_connection = True
            elif isinstance(step, Drop):
                self.close_connection = True
                self.connection.close()
            else:
                raise TypeError(f"unknown scripted step {step!r}")

    return Handler


@pytest.fixture
def scripted_llm_server() -> Iterator[Callable[..., ScriptedLLMServer]]:
    """Factory fixture: ``server = scripted_llm_server([Reply("x")])``; stopped after the test.

    Import it into a conftest.py: ``from tests.support.llm_server import scripted_llm_server``.
    """
    started: list[ScriptedLLMServer] = []

    def factory(script: Any = None, **kwargs: Any) -> ScriptedLLMServer:
        srv = ScriptedLLMServer(script, **kwargs).start()
        started.append(srv)
        return srv

    yield factory
    for srv in started:
        srv.stop()
