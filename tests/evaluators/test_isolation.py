"""Isolation detection and the sandbox command line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evaluators import isolation
from evaluators.sandbox import ENV_ALLOWLIST, SandboxLimits, _environment


def test_detect_isolation_reports_a_level_and_a_description():
    level, description = isolation.detect_isolation()
    assert level in isolation.LEVELS
    assert level == isolation.available_levels()[0]
    assert description and "\n" not in description
    assert isolation.available_levels()[-1] == "rlimits"


def test_rlimits_level_warns_loudly():
    level, description = isolation.detect_isolation("rlimits")
    assert level == "rlimits" and description.startswith("WARNING")


def test_unknown_or_unavailable_levels_are_errors():
    with pytest.raises(isolation.IsolationUnavailable, match="unknown isolation"):
        isolation.resolve_level("docker")
    missing = [lv for lv in ("bwrap", "unshare") if lv not in isolation.available_levels()]
    for level in missing:
        with pytest.raises(isolation.IsolationUnavailable, match="sandbox.isolation=auto"):
            isolation.resolve_level(level)


def test_bwrap_command_hides_home_and_tmp_and_binds_needed_paths_back(tmp_path: Path):
    needed = Path("/root/some/venv")
    args = isolation.bwrap_prefix(work_dir=tmp_path / "w", program=tmp_path / "w" / "p.py",
                                  read_paths=[Path("/usr"), tmp_path], work_dir_mb=64)
    joined = " ".join(args)
    assert "--ro-bind / /" in joined and "--unshare-net" in joined and "--unshare-pid" in joined
    assert "--die-with-parent" in joined and "--new-session" in joined
    assert "--tmpfs /tmp" in joined and "--tmpfs /root" in joined
    assert f"--ro-bind {tmp_path} {tmp_path}" in joined  # under hidden /tmp: bound back
    assert "--ro-bind /usr /usr" not in joined           # visible anyway through the root
    assert str(needed) not in joined                     # not requested, stays hidden
    assert f"--size {64 << 20} --tmpfs {tmp_path / 'w'}" in joined


def test_environment_is_an_allowlist(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    env = _environment("tok", Path("/w"), SandboxLimits(timeout_s=1), 5, None, "evaluate.py",
                       {"CUDA_VISIBLE_DEVICES": "0"})
    assert "OPENAI_API_KEY" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert env["CUDA_VISIBLE_DEVICES"] == "0" and env["HOME"] == "/w"
    allowed = set(ENV_ALLOWLIST) | {"HOME", "TMPDIR", "CUDA_VISIBLE_DEVICES"}
    assert all(k in allowed or k.startswith(("PYTHON", "EVOLVE_", "OMP_", "OPENBLAS_", "MKL_",
                                              "NUMEXPR_", "MPLBACKEND"))
               for k in env)
    # PYTHONPATH is the folder holding the evaluators package this process imported.
    import evaluators
    assert env["PYTHONPATH"] == str(Path(evaluators.__file__).resolve().parents[1])


def test_uid_drop_only_as_root():
    if os.geteuid() != 0:
        assert not isolation.uid_drop_possible("bwrap")
    else:
        assert isolation.uid_drop_possible("bwrap")
