"""A reader in another process sees consistent, growing snapshots while the writer commits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from db import Archive, archive_path
from evaluators.result import StageResult

REPO_ROOT = Path(__file__).resolve().parents[2]
N_PROGRAMS = 300

# The reader polls until it has seen the writer's "done" event, checking on every poll that each
# visible program arrived whole (its two evaluations with it) and that counts never go back.
READER = r"""
import json, sys
from db import Archive
path, n_expected = sys.argv[1], int(sys.argv[2])
arch = Archive.open(path, create=False)
run_id = arch.runs()[0].id
print("ready", flush=True)
seen_counts, last = [], 0
while True:
    done = bool(arch.events(run_id, kind="done"))
    programs = arch.programs(run_id)
    count = len(programs)
    assert count >= last, f"count went back from {last} to {count}"
    assert [p.id for p in programs] == sorted(p.id for p in programs)
    for p in programs[-5:]:
        stages = [e.stage for e in arch.evaluations(p.id)]
        assert stages == ["quick", "full"], f"program {p.id} visible without its evaluations"
        if p.parent_id is not None:
            assert arch.ancestors(p.id)[0].id == p.parent_id
    seen_counts.append(count)
    last = count
    if done:
        break
print(json.dumps({"counts": seen_counts, "final": arch.count_programs(run_id)}), flush=True)
"""


def test_reader_process_sees_consistent_snapshots_during_writes(tmp_path):
    path = archive_path(tmp_path)
    with Archive.open(path) as arch:
        run_id = arch.create_run(problem="p", config_toml="", seed=0, isolation="rlimits")
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        reader = subprocess.Popen([sys.executable, "-c", READER, str(path), str(N_PROGRAMS)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env, cwd=tmp_path)
        try:
            assert reader.stdout.readline().strip() == "ready"
            parent = None
            stages = [StageResult(stage="quick", score=1.0, valid=True),
                      StageResult(stage="full", score=2.0, valid=True)]
            for i in range(N_PROGRAMS):
                parent = arch.add_program(run_id, code=f"x = {i}", parent_id=parent,
                                          score=float(i), valid=True, evaluations=stages)
            arch.add_event(run_id, "done", "writer finished")
            out, err = reader.communicate(timeout=120)
        finally:
            if reader.poll() is None:
                reader.kill()
    assert reader.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["final"] == N_PROGRAMS
    # The reader polled while writes were going on: it saw intermediate states, not only 0 and N.
    assert any(0 < c < N_PROGRAMS for c in report["counts"]), report["counts"][:20]
