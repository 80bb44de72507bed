"""The README's fully offline real model from the command line: the run starts llama.cpp's
server for `local/smollm2`, every call reaches it, and the server is gone when the run ends.
Slow (minutes of CPU) and needs the local extra; .ci/run runs the same command once."""

from __future__ import annotations

from pathlib import Path

import pytest

from db import Archive
from evolve.operators.local_model import missing_local_extra
from tests.first_run.support import evolve


def _llama_servers() -> set[int]:
    found = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if b"evolve.operators.local_model" in (proc / "cmdline").read_bytes():
                    found.add(int(proc.name))
            except OSError:
                continue
    return found


@pytest.mark.slow
def test_readme_local_model_command_runs_with_its_own_server(tmp_path):
    missing = missing_local_extra()
    if missing:
        pytest.skip(missing)
    before = _llama_servers()
    run_dir = tmp_path / "local"
    done = evolve("run", "circle_packing", "--model", "local/smollm2", "--programs", "6",
                  "--minutes", "10", "--no-live", "--run-dir", str(run_dir), cwd=tmp_path, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "starting a llama.cpp server for local/smollm2" in done.stdout
    assert _llama_servers() <= before, "the run left its llama.cpp server running"
    with Archive.open(run_dir / "archive.sqlite", create=False) as archive:
        calls = archive.llm_calls(archive.runs()[-1].id)
    mutation_calls = [c for c in calls if c.purpose == "mutation"]
    assert mutation_calls and all("NoServer" not in (c.error or "") for c in calls)
    assert any(c.tokens_out for c in mutation_calls), "the model answered"
