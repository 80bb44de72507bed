"""`evolve doctor`: what this machine offers a run — Python, sandbox isolation, GPU, LLM keys,
a local Ollama — and what to do about anything missing. Never prints a key's value."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from evaluators import syscall_filter, tree_limits
from evaluators.isolation import available_levels, detect_isolation, exposure
from evolve.cli._common import (
    EXAMPLE_RUN,
    EXIT_RUN_FAILED,
    RunDirOption,
    examples,
    fail,
    out,
    print_json,
    run_dir_of,
)
from evolve.cli.doctor_check import Check, Level
from evolve.cli.doctor_ray import check_ray_cluster
from evolve.cli.doctor_run import RunDirError, run_dir_checks

__all__ = ["Check", "Level", "doctor", "register"]

# Providers litellm reads keys for; any other *_API_KEY in the environment is listed as well.
DEFAULT_OLLAMA = "http://127.0.0.1:11434"


def check_python() -> Check:
    # This module does not even import on Python < 3.11 (the package requires it), so reaching
    # here means the version is fine; report which interpreter runs evolve.
    return Check("python", "ok", f"{platform.python_version()} ({sys.executable})")


def check_isolation() -> Check:
    try:
        level, description = detect_isolation()
    except Exception as exc:  # a probe failure is a finding, not a crash of doctor
        return Check("sandbox", "fail", f"probe failed: {exc}",
                     "set sandbox.isolation = \"rlimits\" to run with resource limits only")
    if level == "rlimits":
        return Check("sandbox", "warn", f"{level}: {description.split('; exposed:')[0]}",
                     "install bubblewrap (apt-get install bubblewrap) or allow unprivileged "
                     "user namespaces for network and file-system isolation")
    # What each level exposes is listed below the table (`check_exposure`).
    return Check("sandbox", "ok", f"{level}: {description.split('; exposed:')[0]}")


def check_exposure() -> list[Check]:
    """One line per isolation level available here: exactly what a candidate can reach."""
    return [Check(f"exposed ({level})", "ok" if level == "bwrap" else "warn",
                  "; ".join(exposure(level)),
                  "" if level == "bwrap" else "use bubblewrap (sandbox.isolation = \"bwrap\")")
            for level in available_levels()]


def check_kernel_defences() -> list[Check]:
    """The seccomp filter on candidates and how far memory/process limits reach (a cgroup over
    the whole process tree, or per process only)."""
    spec, _ = syscall_filter.compiled()
    cgroup = tree_limits.support().version
    return [
        Check("seccomp", "ok" if spec else "warn", syscall_filter.status(),
              "" if spec else "install libseccomp2 (apt-get install libseccomp2) so candidates "
                              "cannot use the kernel keyring, ptrace, bpf or mounts"),
        Check("tree limits", "ok" if cgroup else "warn", tree_limits.status(),
              "" if cgroup else "run as root, or in a cgroup delegated to you (systemd-run "
                                "--user --scope -p Delegate=yes), so memory_mb holds for all of "
                                "a candidate's processes together"),
    ]


def _torch_gpu() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return f"torch {torch.__version__}: " + ", ".join(names)
    return f"torch {torch.__version__}: no CUDA device"


def _nvidia_smi() -> str | None:
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return None
    try:
        done = subprocess.run([binary, "--query-gpu=name,memory.total", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nvidia-smi failed: {exc}"
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    return "nvidia-smi: " + "; ".join(lines) if lines else "nvidia-smi: no GPU listed"


def check_gpu() -> Check:
    found = [text for text in (_torch_gpu(), _nvidia_smi()) if text]
    if any("no CUDA" not in t and "no GPU" not in t and "failed" not in t for t in found):
        return Check("gpu", "ok", "; ".join(found))
    return Check("gpu", "warn", "; ".join(found) or "none (torch not installed, no nvidia-smi)",
                 "GPU problems (problem.toml gpu = required) cannot run here; CPU problems can")


def llm_key_names(environ: dict[str, str] | None = None) -> list[str]:
    """Names (never values) of the provider keys set: every litellm provider key ends in
    `_API_KEY`, so no list of providers is needed."""
    environ = os.environ if environ is None else environ
    return sorted(n for n, v in environ.items() if n.endswith("_API_KEY") and v)


def check_keys() -> Check:
    names = llm_key_names()
    if names:
        return Check("llm keys", "ok", ", ".join(names))
    return Check("llm keys", "warn", "none found",
                 "export OPENAI_API_KEY (or another provider's key), run Ollama locally, or "
                 "runs use the offline operators")


def check_ollama(url: str, timeout_s: float = 1.5) -> Check:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/tags", timeout=timeout_s) as reply:
            import json
            models = [m.get("name", "?") for m in json.loads(reply.read() or b"{}").get("models", [])]
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check("ollama", "warn", f"not reachable at {url} ({reason})",
                     "start it with `ollama serve` to use local models (ollama/NAME)")
    listed = ", ".join(models) if models else "no models pulled (`ollama pull qwen3`)"
    return Check("ollama", "ok", f"reachable at {url}: {listed}")


def doctor(
    run_dir: Annotated[str | None, typer.Argument(
        help="a run directory to check instead of the machine: archive integrity, lock, "
             "isolation used, stale sandboxes", show_default=False)] = None,
    run_dir_option: RunDirOption = None,
    ollama_url: Annotated[str, typer.Option(help="where to look for Ollama")] =
    os.environ.get("OLLAMA_HOST", DEFAULT_OLLAMA),
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for scripts")] = False,
    executor: Annotated[str, typer.Option(
        "--executor", help="also check this executor: ray reports the cluster's nodes")] = "local",
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="the Ray cluster's head, host:port (default RAY_ADDRESS)")] = None,
) -> None:
    """Check this machine for runs: Python, sandbox isolation, GPU, LLM keys, Ollama; or,
    given RUN_DIR, that run: archive integrity, lock, isolation used, stale sandboxes.

    Exits 1 when something a run needs is missing; warnings only say what is not available."""
    exposures: list[Check] = []
    run_dir = run_dir_of(run_dir, run_dir_option)
    if run_dir is not None:
        checks = _run_dir_checks(run_dir)
    else:
        if "://" not in ollama_url:
            ollama_url = f"http://{ollama_url}"
        checks = [check_python(), check_isolation(), *check_kernel_defences(), check_gpu(),
                  check_keys(), check_ollama(ollama_url)]
        if executor == "ray" or ray_address:
            checks += check_ray_cluster(ray_address)
        exposures = check_exposure()
    if as_json:
        print_json([asdict(c) for c in [*checks, *exposures]])
    else:
        print_checks(checks)
        styles = {"ok": "green", "warn": "yellow", "fail": "red"}
        if exposures:
            out().print("\nWhat a candidate can reach at each sandbox level here:")
        for c in exposures:
            out().print(Text(f"- {c.name.removeprefix('exposed (').rstrip(')')}: {c.result}",
                             style=styles[c.level]), soft_wrap=True)
    if any(c.level == "fail" for c in checks):
        raise typer.Exit(EXIT_RUN_FAILED)


def print_checks(checks: list[Check]) -> None:
    """A table on a terminal wide enough for one; plain lines (one per check) otherwise."""
    console = out()
    if not console.is_terminal or console.width < 100:
        for c in checks:
            console.print(f"{c.name}: {c.level}: {c.result}"
                          + (f" (what to do: {c.hint})" if c.hint else ""),
                          markup=False, highlight=False, soft_wrap=True)
        return
    styles = {"ok": "green", "warn": "yellow", "fail": "red"}
    table = Table("check", "", "found", "what to do", header_style="bold", box=None)
    for c in checks:
        table.add_row(c.name, Text(c.level, style=styles[c.level]), Text(c.result), Text(c.hint))
    console.print(table)


def _run_dir_checks(run_dir: str) -> list[Check]:
    try:
        return run_dir_checks(run_dir)
    except RunDirError as exc:
        fail(str(exc))


def register(app: typer.Typer) -> None:
    app.command(epilog=examples("evolve doctor", "evolve doctor --json",
                                f"evolve doctor {EXAMPLE_RUN}",
                                "evolve doctor --ollama-url http://10.0.0.5:11434",
                                "evolve doctor --executor ray --ray-address 10.0.0.2:6379"))(doctor)
