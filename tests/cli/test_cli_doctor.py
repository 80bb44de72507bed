"""`evolve doctor` reports real findings about this machine and never prints key values."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from evolve.cli import app

runner = CliRunner()


class _OllamaTags(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        if self.path != "/api/tags":
            self.send_error(404)
            return
        body = json.dumps({"models": [{"name": "qwen3:0.6b"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def ollama_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OllamaTags)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _checks(output: str) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(output)}


def test_doctor_finds_keys_by_name_only(monkeypatch: pytest.MonkeyPatch, ollama_url: str) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-secret-value-123")
    monkeypatch.setenv("MY_PROVIDER_API_KEY", "another-secret-456")
    result = runner.invoke(app, ["doctor", "--json", "--ollama-url", ollama_url])
    assert result.exit_code == 0, result.output
    assert "secret" not in result.output
    checks = _checks(result.stdout)
    assert "ANTHROPIC_API_KEY" in checks["llm keys"]["result"]
    assert "MY_PROVIDER_API_KEY" in checks["llm keys"]["result"]
    assert checks["llm keys"]["level"] == "ok"
    assert checks["ollama"]["level"] == "ok"
    assert "qwen3:0.6b" in checks["ollama"]["result"]
    assert checks["python"]["level"] == "ok"
    assert checks["gpu"]["level"] in ("ok", "warn") and checks["gpu"]["result"]
    from evaluators.isolation import detect_isolation
    assert checks["sandbox"]["result"].startswith(detect_isolation()[0])


def test_doctor_says_what_to_do_when_things_are_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import socket

    for name in [n for n in os.environ if n.endswith("_API_KEY")]:
        monkeypatch.delenv(name)
    with socket.socket() as probe:           # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    result = runner.invoke(app, ["doctor", "--ollama-url", f"127.0.0.1:{closed_port}"])
    assert result.exit_code == 0, result.output
    assert "none found" in result.stdout
    assert "not reachable" in result.stdout and "ollama serve" in result.stdout


def test_doctor_says_how_far_limits_reach_and_whether_calls_are_filtered(ollama_url: str) -> None:
    import re
    from pathlib import Path

    result = runner.invoke(app, ["doctor", "--json", "--ollama-url", ollama_url])
    assert result.exit_code == 0, result.output
    checks = _checks(result.stdout)
    limits, seccomp = checks["tree limits"], checks["seccomp"]
    if limits["level"] == "ok":
        # It names the cgroup folders evaluations are made in: real cgroups of this machine.
        folders = re.search(r"\(under (.+)\)$", limits["result"]).group(1).split(", ")
        assert folders and all((Path(f) / "cgroup.procs").exists() for f in folders)
        assert limits["result"].startswith(("cgroup v1", "cgroup v2"))
    else:
        assert "per process only" in limits["result"] and limits["hint"]
    if seccomp["level"] == "ok":
        assert "keyring" in seccomp["result"] and "sandbox-denied" in seccomp["result"]
    else:
        assert "libseccomp" in seccomp["result"] + seccomp["hint"]
