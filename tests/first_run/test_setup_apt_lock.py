"""`scripts/apt_install.sh` (used by scripts/setup.sh for bubblewrap) waits while another apt
process holds the lock, up to a bound, instead of giving up at once. apt-get here is a stand-in
on PATH that answers the way apt does while locked, then installs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.first_run.support import REPO

FAKE_APT = """#!/usr/bin/env bash
echo "$*" >> "{log}"
count=$(wc -l < "{log}")
if [ "$count" -le "{locked_calls}" ]; then
    echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)" >&2
    echo "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?" >&2
    exit 100
fi
exit 0
"""


def _run(tmp_path: Path, locked_calls: int, wait_s: int) -> tuple[subprocess.CompletedProcess, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    log.touch()
    fake = bin_dir / "apt-get"
    fake.write_text(FAKE_APT.format(log=log, locked_calls=locked_calls))
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               EVOLVE_APT_LOCK_WAIT_S=str(wait_s), EVOLVE_APT_LOCK_POLL_S="1")
    done = subprocess.run(["bash", str(REPO / "scripts" / "apt_install.sh"), "bubblewrap"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    return done, log.read_text().splitlines()


def test_waits_for_the_apt_lock_then_installs(tmp_path):
    done, calls = _run(tmp_path, locked_calls=3, wait_s=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "another apt process holds the lock; waiting" in done.stdout
    assert len(calls) == 4 and all("install -y -qq bubblewrap" in c for c in calls)
    assert all("DPkg::Lock::Timeout=" in c for c in calls)


def test_gives_up_once_the_bound_has_passed(tmp_path):
    done, calls = _run(tmp_path, locked_calls=1000, wait_s=2)
    assert done.returncode == 1
    assert "still locked by another process after 2s; giving up" in done.stdout
    assert 2 <= len(calls) <= 5 and not any("update" in c for c in calls)
