"""Reference figures per scenario: round robin (the score's normaliser), every baseline and the
pooled bound. Stored in references.json so that an evaluation does not re-simulate them;
`python -m problems.serving.references` rewrites the file (a test checks it is current)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from problems.serving.run import bound, simulate
from problems.serving.scenarios import STAGES, make_scenarios

HERE = Path(__file__).resolve().parent
PATH = HERE / "references.json"
BASELINES = ("round_robin", "least_outstanding", "least_kv", "llumnix")


def _load(name: str):
    path = HERE / "baselines" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_serving_baseline_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compute(stage: str) -> dict:
    out = {}
    modules = {name: _load(name) for name in BASELINES}
    for scenario in make_scenarios(STAGES[stage]):
        entry = {"bound": bound(scenario).as_dict(),
                 "capacity_rps": round(scenario.capacity_rps, 3),
                 "compression": round(scenario.compression, 4),
                 "clipped": scenario.workload.clipped}
        for name, module in modules.items():
            entry[name] = simulate(scenario, module.dispatch,
                                   getattr(module, "migrate", None)).as_dict()
        out[scenario.key] = entry
    return out


def load() -> dict:
    return json.loads(PATH.read_text()) if PATH.is_file() else {}


if __name__ == "__main__":
    data = {stage: compute(stage) for stage in STAGES}
    PATH.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {PATH}")
