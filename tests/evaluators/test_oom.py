"""The machine's out-of-memory kill count, read from /proc/vmstat before and after each
evaluation."""

from pathlib import Path

import pytest

from evaluators.oom import kills_since, oom_kills

VMSTAT = Path("/proc/vmstat")


@pytest.mark.skipif(not VMSTAT.exists(), reason="no /proc/vmstat on this system")
def test_the_count_is_the_oom_kill_line_of_vmstat():
    lines = [line.split() for line in VMSTAT.read_text().splitlines()]
    expected = [int(value) for name, value in lines if name == "oom_kill"]
    if not expected:
        assert oom_kills() is None   # a kernel before 4.13 does not count them
    else:
        assert oom_kills() == expected[0]
        assert kills_since(oom_kills()) == 0


def test_an_unknown_count_stays_unknown():
    assert kills_since(None) is None
