"""Isolation detection and the sandbox command line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evaluators import isolation
from evaluators.sandbox_common import ENV_ALLOWLIST, SandboxLimits, environment
from evaluators.view import sandbox_view


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


def test_bwrap_command_is_an_allow_list_without_the_hidden_files(tmp_path: Path):
    problem = tmp_path / "prob"
    (problem / "data").mkdir(parents=True)
    for rel in ("evaluate.py", "problem.toml", "data/public.txt", "data/secret.gz", "answer.json"):
        (problem / rel).write_text("x")
    view = sandbox_view(problem, ["data/secret.gz", "answer.json"])
    args = isolation.bwrap_prefix(view=view, work_dir=tmp_path / "w",
                                  program=tmp_path / "w" / "p.py", work_dir_mb=64)
    joined = " ".join(args)
    assert "--ro-bind / /" not in joined and "--bind / /" not in joined  # no host root
    assert "--unshare-net" in joined and "--unshare-pid" in joined
    assert "--die-with-parent" in joined and "--new-session" in joined
    assert "--tmpfs /tmp" in joined and "--proc /proc" in joined and "--dev /dev" in joined
    assert "--ro-bind /usr /usr" in joined
    for rel in ("evaluate.py", "problem.toml", "data/public.txt"):
        assert f"--ro-bind {problem / rel} {problem / rel}" in joined
    assert "secret.gz" not in joined and "answer.json" not in joined
    assert f"--ro-bind {problem} {problem}" not in joined  # bound entry by entry around them
    for prefix in isolation.runtime_paths():  # each bound itself or through a parent
        assert any(str(parent) in joined for parent in (prefix, *prefix.parents)
                   if parent != Path("/"))
    assert "/home" not in joined and "/srv" not in joined and "/opt" not in joined
    import evaluators
    checkout = Path(evaluators.__file__).resolve().parents[1]
    assert f"--ro-bind {checkout} {checkout}" not in joined  # not the checkout, its .git
    assert f"--size {64 << 20} --tmpfs {tmp_path / 'w'}" in joined


def test_problem_in_a_package_brings_its_helpers_not_other_problems():
    from evaluators.view import problem_paths

    problems = Path(__file__).resolve().parents[2] / "problems"
    paths = problem_paths(problems / "spot_single")
    assert problems / "_spot_sim" in paths and problems / "__init__.py" in paths
    assert problems / "spot_multi" not in paths and problems / "txn" not in paths


def test_every_level_says_what_it_exposes():
    for level in isolation.LEVELS:
        lines = isolation.exposure(level)
        assert lines and all(line and "\n" not in line for line in lines)
    if os.geteuid() == 0 and not isolation.uid_drop_possible("rlimits"):
        assert any("ROOT" in line for line in isolation.exposure("rlimits"))


def test_environment_is_an_allowlist(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    env = environment("tok", Path("/w"), SandboxLimits(timeout_s=1), 5, None, "evaluate.py",
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


def test_a_non_dumpable_process_hides_its_environment_from_its_own_uid():
    """What `protect_this_process` buys at the weaker levels: another process of the same uid
    (a candidate) cannot read /proc/<pid>/environ. Checked with two forked children of one
    unprivileged uid (as root we can make one), so the real kernel check is exercised."""
    if os.geteuid() != 0:
        pytest.skip("needs root to fork two processes under a spare uid")
    uid = 65534

    def reader(target: int) -> str:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            os.setgid(uid)
            os.setuid(uid)
            try:
                with open(f"/proc/{target}/environ", "rb") as f:
                    answer = b"READ %d" % len(f.read())
            except OSError as exc:
                answer = type(exc).__name__.encode()
            os.write(write_end, answer)
            os._exit(0)
        os.close(write_end)
        os.waitpid(pid, 0)
        with os.fdopen(read_end, "rb") as f:
            return f.read().decode()

    for protect in (False, True):
        ready_r, ready_w = os.pipe()
        stop_r, stop_w = os.pipe()
        target = os.fork()
        if target == 0:
            os.setgid(uid)
            os.setuid(uid)
            if protect:
                isolation.protect_this_process()
            else:  # a change of uid (and our parent's own flag) leaves it off: turn it on
                import ctypes
                ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)
            os.write(ready_w, b"x")
            os.read(stop_r, 1)
            os._exit(0)
        try:
            os.read(ready_r, 1)
            seen = reader(target)
        finally:
            os.write(stop_w, b"x")
            os.waitpid(target, 0)
            for fd in (ready_r, ready_w, stop_r, stop_w):
                os.close(fd)
        if protect:
            assert seen == "PermissionError"
        else:
            assert seen.startswith("READ"), seen
