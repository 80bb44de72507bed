"""Replies are read in the format they hold; one EVOLVE-BLOCK parser for every path; the bandit
learns that an arm yields nothing and credits the mutation actually made."""

from __future__ import annotations

import random

import pytest

from evolve.config import BanditConfig
from evolve.operators.offline import Source, TuneOperator
from evolve.patch.blocks import evolve_block_ranges
from evolve.patch.mutation import MutationError, check_evolve_blocks, child_from_reply
from evolve.select.bandit import Arm, Bandit
from tests.engine.engine_support import engine_config, open_archive, run
from tests.support.llm_server import ScriptedLLMServer

PARENT = """import math

# EVOLVE-BLOCK-START
def f(x):
    return x * 2
# EVOLVE-BLOCK-END

def helper():
    return 1
"""
DIFF = "Triple it.\n<<<<<<< SEARCH\n    return x * 2\n=======\n    return x * 3\n>>>>>>> REPLACE\n"


@pytest.mark.parametrize("kind", ["full", "crossover", "repair"])
def test_a_diff_answered_to_a_rewrite_request_is_applied_as_a_diff(kind):
    assert child_from_reply(kind, PARENT, DIFF, 10_000) == PARENT.replace("x * 2", "x * 3")


def test_a_whole_program_answered_to_a_diff_request_is_taken_whole():
    whole = PARENT.replace("x * 2", "x * 5")
    assert child_from_reply("diff", PARENT, f"Here it is:\n```python\n{whole}```\n",
                            10_000) == whole


def test_a_snippet_answered_to_a_diff_request_is_not_taken_as_the_program():
    """A fenced fragment without the markers could be an illustration: it is refused as a
    fragment (it does not define f) instead of replacing the block."""
    with pytest.raises(MutationError) as info:
        child_from_reply("diff", PARENT, "Use this:\n```python\nreturn x * 5\n```\n", 10_000)
    assert info.value.kind == "incomplete-block"
    assert "does not define f" in info.value.message


MISSING_END = "import math\nLIMIT = 3\n# EVOLVE-BLOCK-START\nSCALE = 2.5\nSTEPS = 10\n"


def test_a_missing_end_marker_means_the_same_region_to_every_path():
    assert evolve_block_ranges(MISSING_END) == [(3, 6)]
    assert Source(MISSING_END).blocks == [(4, 6)]  # 1-based, inclusive: the same lines
    rng = random.Random(0)
    for _ in range(30):  # the offline operator only edits after START ...
        child = TuneOperator().propose(MISSING_END, rng)
        assert child.split("\n")[:3] == MISSING_END.split("\n")[:3]
        check_evolve_blocks(MISSING_END, child)  # ... and the LLM path's check agrees
    with pytest.raises(MutationError, match="LIMIT"):
        check_evolve_blocks(MISSING_END, MISSING_END.replace("LIMIT = 3", "LIMIT = 4"))


def test_an_arm_whose_proposals_are_rejected_ranks_below_one_that_does_not_improve():
    useful, useless = Arm("m", "diff"), Arm("m", "full")
    bandit = Bandit([useful, useless], BanditConfig(epsilon=0.0, decay=1.0))
    rng = random.Random(1)
    for _ in range(200):
        arm = bandit.select(rng)
        bandit.on_submit(arm)
        # Neither ever improves; only `useful` yields valid programs.
        bandit.update(arm, 0.0, yielded=1.0 if arm == useful else 0.0)
    pulls = {s["arm"]: s["pulls"] for s in bandit.summary()}
    assert pulls["m:full"] < 0.2 * pulls["m:diff"]


def test_credit_goes_to_the_mutation_actually_made(tmp_path):
    """A crossover without a second parent (one program in its island) becomes a full rewrite,
    and the full arm, not the crossover arm, is credited."""
    whole = ("```python\n\"\"\"Fixture: a constant to move towards 10.\"\"\"\n\n"
             "# EVOLVE-BLOCK-START\nVALUE = {v}\n# EVOLVE-BLOCK-END\n\n\n"
             "def solve() -> float:\n    return VALUE\n```\n")
    count = {"n": 0}

    def respond(_request):
        from tests.support.llm_server import Reply

        count["n"] += 1
        return Reply(whole.format(v=float(count["n"])))

    with ScriptedLLMServer(respond) as server:
        config = engine_config(tmp_path, server, islands={"count": 1},
                               mutation={"mix": {"crossover": 1.0, "full": 0.001},
                                         "repair_rate": 0.0, "max_resample": 0},
                               concurrency={"proposals": 1, "evaluations": 1},
                               bandit={"algorithm": "fixed"}, budget={"max_programs": 3})
        run(config, tmp_path)
    with open_archive(tmp_path) as archive:
        first = archive.find_by_proposal_key(1, "7:0")
    assert first.mutation_kind == "full"  # only the initial program: no second parent
    assert first.timings["arm"] == "openai/scripted:full"


TWO_BLOCKS = """import math

# EVOLVE-BLOCK-START
A = 1
# EVOLVE-BLOCK-END


def middle():
    return A + B

# EVOLVE-BLOCK-START
B = 2
# EVOLVE-BLOCK-END
"""


def test_a_whole_program_with_blank_lines_moved_keeps_the_parents_frame_exactly():
    reply = ("```python\nimport math\n# EVOLVE-BLOCK-START\nA = 3\n# EVOLVE-BLOCK-END\n"
             "def middle():\n    return A + B\n# EVOLVE-BLOCK-START\nB = 4\n"
             "# EVOLVE-BLOCK-END\n```")
    assert child_from_reply("full", TWO_BLOCKS, reply, 10_000) == \
        TWO_BLOCKS.replace("A = 1", "A = 3").replace("B = 2", "B = 4")


def test_a_body_without_markers_cannot_say_which_of_two_blocks_it_replaces():
    with pytest.raises(MutationError) as info:
        child_from_reply("full", TWO_BLOCKS, "```python\nA = 3\nB = 4\n```", 10_000)
    assert info.value.kind == "outside-evolve-block"
    assert "2 blocks" in info.value.message


def test_a_missing_end_marker_before_fixed_code_is_refused_with_consistent_counts():
    """The parent has code after its block, so a reply without the END marker does not say
    where the block stops; the message gives both counts, which differ."""
    child = PARENT.replace("x * 2", "x * 3").replace("# EVOLVE-BLOCK-END\n", "")
    with pytest.raises(MutationError) as info:
        child_from_reply("full", PARENT, f"```python\n{child}```", 10_000)
    assert "your version has 1 START and 0 END marker line(s), the current program 1 and 1" \
        in info.value.message


def test_a_parent_without_markers_takes_the_whole_program():
    parent = "def f(x):\n    return x\n"
    assert child_from_reply("full", parent, "```python\ndef f(x):\n    return -x\n```",
                            10_000) == "def f(x):\n    return -x\n"
    with pytest.raises(MutationError) as info:  # still: a fragment is not the program
        child_from_reply("full", parent, "```python\nreturn -x\n```", 10_000)
    assert info.value.kind == "incomplete-block"


def test_placeholders_for_left_out_code_are_refused_but_ordinary_comments_are_not():
    elided = PARENT.replace("    return x * 2", "    # ... (rest of the function unchanged)")
    with pytest.raises(MutationError) as info:
        child_from_reply("full", PARENT, f"```python\n{elided}```", 10_000)
    assert info.value.kind == "elided-code" and "rest of the function" in info.value.message
    commented = PARENT.replace("    return x * 2", "    # ...and then double it; the sign "
                                                   "stays unchanged\n    return x * 2 + 0")
    assert child_from_reply("full", PARENT, f"```python\n{commented}```", 10_000) == commented
    stub = "# EVOLVE-BLOCK-START\ndef f(x):\n    ...\n# EVOLVE-BLOCK-END\n"  # the parent's own
    assert child_from_reply("full", stub, "```python\n" + stub.replace(
        "    ...", "    ...\n    return 1") + "```", 10_000).count("...") == 1
