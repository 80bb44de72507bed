"""A fixed-seed run with LLM operators, offline, for before/after comparisons of the engine.

    python scripts/fixed_seed_run.py RUN_DIR

The models are the scripted OpenAI-compatible server of the test suite (each reply moves the
fixture's VALUE by +1 as a SEARCH/REPLACE diff), so prompts, islands, migrations, the novelty
gate and the scratchpad all take part and everything stored follows from the seed. Compare two
such runs with scripts/archive_compare.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.engine.engine_support import bump, engine_config, run  # noqa: E402
from tests.support.llm_server import ScriptedLLMServer  # noqa: E402


def main(run_dir: Path) -> None:
    with ScriptedLLMServer(bump(1.0)) as server:
        config = engine_config(run_dir, server, seed=3, budget={"max_programs": 20},
                               islands={"count": 2, "migration_interval": 2,
                                        "migration_rate": 0.5},
                               concurrency={"proposals": 3, "evaluations": 2},
                               scratchpad={"enabled": True, "interval": 4},
                               mutation={"mix": {"diff": 1.0}, "repair_rate": 0.2},
                               prompts={"history": 3})
        outcome = run(config, run_dir)
    print(f"{run_dir}: {outcome.status}, {outcome.programs} programs, best {outcome.best_score}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
