"""SEARCH/REPLACE diffs, full rewrites and EVOLVE-BLOCK enforcement."""

from __future__ import annotations

import pytest

from evolve.patch.mutation import (
    MutationError,
    SearchReplace,
    apply_diff,
    check_evolve_blocks,
    child_from_reply,
    parse_diff,
)

PARENT = """import math

# EVOLVE-BLOCK-START
def f(x):
    if x > 0:
        return x * 2
    return 0
# EVOLVE-BLOCK-END

def helper():
    return 1
"""


def diff(search: str, replace: str) -> str:
    return f"Idea.\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def test_exact_diff_applies():
    child = child_from_reply("diff", PARENT, diff("        return x * 2", "        return x * 3"),
                             10_000)
    assert "return x * 3" in child and "return x * 2" not in child


def test_whitespace_tolerant_match_reindents_the_replacement():
    # The model lost the indentation and added trailing spaces.
    reply = diff("if x > 0:   \n    return x * 2", "if x > 1:\n    return x * 4")
    child = child_from_reply("diff", PARENT, reply, 10_000)
    assert "    if x > 1:\n        return x * 4\n" in child


def test_unmatched_block_is_an_error_naming_the_closest_line():
    with pytest.raises(MutationError) as info:
        child_from_reply("diff", PARENT, diff("        return x * 5", "        return 1"), 10_000)
    assert info.value.kind == "diff-no-match"
    assert "SEARCH block 1 matches nothing" in info.value.message
    assert "line 6" in info.value.message  # 'return x * 2' is the closest line


def test_one_bad_block_fails_the_whole_diff_nothing_skipped():
    reply = diff("        return x * 2", "        return x * 3") + diff("nope()", "yes()")
    with pytest.raises(MutationError) as info:
        child_from_reply("diff", PARENT, reply, 10_000)
    assert "SEARCH block 2" in info.value.message and "1 of 2 blocks applied; none were kept" \
        in info.value.message


def test_ambiguous_search_prefers_the_single_match_inside_the_block():
    code = "x = 1\n# EVOLVE-BLOCK-START\nx = 1\n# EVOLVE-BLOCK-END\n"
    assert apply_diff(code, [SearchReplace("x = 1", "x = 2")]) == \
        "x = 1\n# EVOLVE-BLOCK-START\nx = 2\n# EVOLVE-BLOCK-END\n"
    twice = "# EVOLVE-BLOCK-START\nx = 1\nx = 1\n# EVOLVE-BLOCK-END\n"
    with pytest.raises(MutationError) as info:
        apply_diff(twice, [SearchReplace("x = 1", "x = 2")])
    assert info.value.kind == "diff-ambiguous"


def test_edit_outside_the_block_is_rejected_with_the_line():
    with pytest.raises(MutationError) as info:
        child_from_reply("diff", PARENT, diff("import math", "import numpy"), 10_000)
    assert info.value.kind == "outside-evolve-block"
    assert "line 1" in info.value.message and "'import numpy'" in info.value.message


def test_removed_markers_are_rejected():
    child = PARENT.replace("# EVOLVE-BLOCK-END\n", "")
    with pytest.raises(MutationError, match="1 START and 0 END marker line"):
        check_evolve_blocks(PARENT, child)


def test_full_rewrite_with_markers_and_body_only_reply():
    body = "def f(x):\n    return abs(x)\n"
    child = child_from_reply("full", PARENT, f"Simpler.\n```python\n{body}```\n", 10_000)
    assert child.startswith("import math\n\n# EVOLVE-BLOCK-START\ndef f(x):\n    return abs(x)")
    assert child.endswith("def helper():\n    return 1\n")
    whole = PARENT.replace("return x * 2", "return x * 7")
    assert child_from_reply("full", PARENT, f"```python\n{whole}```", 10_000) == whole


def test_too_long_and_unchanged_and_no_code_are_rejected():
    with pytest.raises(MutationError) as info:
        child_from_reply("diff", PARENT, diff("        return x * 2", "        return x * 2222"), 60)
    assert info.value.kind == "too-long"
    with pytest.raises(MutationError) as info:
        child_from_reply("full", PARENT, f"```python\n{PARENT}```", 10_000)
    assert info.value.kind == "no-change"
    with pytest.raises(MutationError) as info:
        child_from_reply("full", PARENT, "I would rather not.", 10_000)
    assert info.value.kind == "no-code"
    with pytest.raises(MutationError) as info:
        child_from_reply("diff", PARENT, "no blocks here", 10_000)
    assert info.value.kind == "diff-format"


def test_repair_accepts_diff_or_full_program():
    fixed = child_from_reply("repair", PARENT, diff("    return 0", "    return -1"), 10_000)
    assert "return -1" in fixed
    full = PARENT.replace("return 0", "return -2")
    assert "return -2" in child_from_reply("repair", PARENT, f"```python\n{full}```", 10_000)


def test_parse_and_extract_helpers():
    blocks = parse_diff(diff("a", "") + diff("b\nc", "d"))
    assert blocks == [SearchReplace("a", ""), SearchReplace("b\nc", "d")]
