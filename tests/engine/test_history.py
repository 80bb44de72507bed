"""Recent attempts shown in prompts: from the same parent first, then its island; only what was
ingested when the proposal was planned; each with the model's summary and its outcome. And, in a
real run, later prompts carry them and crossover's parent B is never an inspiration."""

from __future__ import annotations

import re
from typing import Any

from evolve.engine.committed import Committed
from evolve.engine.history import recent_attempts
from tests.engine.engine_support import engine_config, open_archive, parent_value, run
from tests.support.llm_server import Reply, ScriptedLLMServer


def item(seq: int, parent: int, island: int = 0, **fields: Any) -> Committed:
    base: dict[str, Any] = dict(seq=seq, program_id=seq + 10, island=island, code="",
                                status="evaluated", score=float(seq), valid=True, generation=1,
                                metrics={}, parent_seq=parent, mutation="diff",
                                summary=f"change {seq}")
    return Committed(**(base | fields))


def test_attempts_from_the_parent_come_first_then_its_island_oldest_first():
    committed = {-1: item(-1, None, score=0.0), 0: item(0, -1), 1: item(1, -1, island=1),
                 2: item(2, 0), 3: item(3, -1, status="rejected", valid=False, score=None,
                                        error_kind="diff-no-match",
                                        error_text="after 4 tries: SEARCH block 1 matches "
                                                   "nothing\nmore"),
                 4: item(4, -1, status="duplicate", valid=False, score=None),
                 5: item(5, -1, valid=False, score=None, error_kind="runtime-error",
                         error_text="ZeroDivisionError: division by zero"),
                 6: item(6, -1)}  # committed but not yet ingested: not shown
    views = recent_attempts(committed, ingested=6, parent_seq=-1, island=0, limit=4)
    assert [v.summary for v in views] == ["change 1", "change 3", "change 4", "change 5"]
    assert all(v.same_parent for v in views)
    assert views[1].outcome == "reply not usable (diff-no-match: after 4 tries: SEARCH block 1 " \
                               "matches nothing)"
    assert views[2].outcome == "a duplicate of an earlier program (not evaluated)"
    assert views[3].outcome == "invalid (runtime-error: ZeroDivisionError: division by zero)"
    # Few from the parent: the island's newest fill the rest.
    views = recent_attempts(committed, ingested=6, parent_seq=0, island=0, limit=3)
    assert [(v.summary, v.same_parent) for v in views] == [
        ("change 2", True), ("change 4", False), ("change 5", False)]
    assert views[0].outcome == "score 2 (+2 vs its parent)"
    assert recent_attempts(committed, ingested=6, parent_seq=-1, island=0, limit=0) == []
    committed[6] = item(6, -1, operator="tune", mutation="offline", summary="")
    last = recent_attempts(committed, ingested=7, parent_seq=-1, island=0, limit=1)
    assert [(v.mutation, v.outcome) for v in last] == [("tune", "score 6 (+6 vs its parent)")]


_NOTE = re.compile(r"Attempt (\d+)\.")


def test_later_prompts_recall_earlier_attempts_and_parent_b_is_never_an_inspiration(tmp_path):
    counter = {"n": 0}
    prompts: list[str] = []

    def respond(request: dict[str, Any]) -> Reply:
        user = "\n".join(m["content"] for m in request["messages"] if m["role"] == "user")
        prompts.append(user)
        counter["n"] += 1
        n = counter["n"]
        old = parent_value(request)
        new = "float('nan')" if n % 3 == 0 else repr(old + 0.5 + n / 1000)  # some fail
        note = f"Attempt {n}. Move VALUE."
        if "<<<<<<< SEARCH" in user:
            return Reply(f"{note}\n<<<<<<< SEARCH\nVALUE = {old!r}\n=======\nVALUE = {new}\n"
                         f">>>>>>> REPLACE\n")
        code = re.search(r"```python\n(.*?)```", user, re.S).group(1)
        return Reply(f"{note}\n```python\n{code.replace(f'VALUE = {old!r}', f'VALUE = {new}')}"
                     f"```\n")

    with ScriptedLLMServer(respond) as server:
        config = engine_config(tmp_path, server, budget={"max_programs": 10},
                               islands={"count": 1},
                               concurrency={"proposals": 2, "evaluations": 2},
                               mutation={"mix": {"diff": 0.5, "crossover": 0.5},
                                         "repair_rate": 0.0, "max_resample": 0},
                               sampling={"inspirations_top": 3, "inspirations_diverse": 3},
                               bandit={"algorithm": "fixed"})
        run(config, tmp_path)
    recalled = [p.split("## Recent attempts", 1)[1].split("## How to answer")[0]
                for p in prompts if "## Recent attempts" in p]
    assert len(recalled) >= len(prompts) // 2  # those planned after the first results
    text = "\n".join(recalled)
    assert re.search(r'score -?[\d.]+ \([+-][\d.]+ vs its parent\): "Attempt \d+\. Move VALUE\."',
                     text)
    assert re.search(r'invalid \([a-z-]+: .*\): "Attempt \d+\. Move VALUE\."', text)
    with open_archive(tmp_path) as archive:
        crossed = [p for p in archive.programs(1) if p.mutation_kind == "crossover"]
    assert crossed
    for p in crossed:
        second = p.timings["second_parent_id"]
        assert second != p.parent_id and second not in p.inspiration_ids
