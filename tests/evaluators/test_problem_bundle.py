"""A problem folder as one content-addressed bundle: same contents, same digest; unpacked once,
readable by the sandbox's unprivileged user, never half-written."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from evaluators.problem_bundle import bundle_problem, unpack, unpacked_dir

SLEEP_PROBLEM = Path(__file__).resolve().parents[1] / "support" / "sleep_problem"


@pytest.fixture
def problem(tmp_path):
    folder = tmp_path / "problem"
    shutil.copytree(SLEEP_PROBLEM, folder)
    (folder / "data").mkdir()
    (folder / "data" / "hidden.txt").write_text("secret table\n")
    (folder / "data" / "hidden.txt").chmod(0o600)
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "x.pyc").write_bytes(b"\0")
    return folder


def test_the_digest_follows_the_contents_only(problem, tmp_path):
    first = bundle_problem(problem)
    copy = tmp_path / "copy"
    shutil.copytree(problem, copy)  # other times, other folder name
    assert bundle_problem(copy).digest == first.digest
    (copy / "evaluate.py").write_text((copy / "evaluate.py").read_text() + "\n# edited\n")
    assert bundle_problem(copy).digest != first.digest


def test_unpack_gives_the_same_files_once_and_readable(problem):
    bundle = bundle_problem(problem)
    target = unpacked_dir(bundle.digest)
    shutil.rmtree(target, ignore_errors=True)
    try:
        folder = unpack(bundle.data, bundle.digest)
        assert folder == target
        assert bundle.problem_path == "problem"  # a stand-alone problem: its folder alone
        names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        assert names == ["problem/data/hidden.txt", "problem/evaluate.py", "problem/initial.py",
                         "problem/problem.toml"]
        folder = folder / bundle.problem_path
        assert (folder / "data" / "hidden.txt").read_text() == "secret table\n"
        for path in [folder, *folder.rglob("*")]:
            mode = path.stat().st_mode
            assert mode & stat.S_IROTH, path  # the sandbox's uid reads the problem
        (folder / "marker").write_text("x")
        assert unpack(b"not even read", bundle.digest) == target  # already there: reused
        assert (target / "problem" / "marker").exists()
    finally:
        shutil.rmtree(target, ignore_errors=True)


def test_a_corrupted_bundle_is_refused(problem):
    bundle = bundle_problem(problem)
    shutil.rmtree(unpacked_dir(bundle.digest), ignore_errors=True)
    with pytest.raises(ValueError, match="corrupted"):
        unpack(bundle.data[:-10] + b"0" * 10, bundle.digest)
    assert not unpacked_dir(bundle.digest).exists()
