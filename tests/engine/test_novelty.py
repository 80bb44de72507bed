"""Exact and near-duplicate detection."""

from __future__ import annotations

from evolve.config import NoveltyConfig
from evolve.patch.novelty import NoveltyFilter, code_hash, fingerprint, jaccard

BASE = """# EVOLVE-BLOCK-START
def solve(values):
    total = 0
    for value in values:
        if value > 3:
            total += value * 2
        else:
            total -= value
    return total + 10
# EVOLVE-BLOCK-END
"""


def test_hash_ignores_comments_blank_lines_and_spacing_but_not_code():
    noisy = BASE.replace("    total = 0\n", "    total  =  0   # start\n\n")
    assert code_hash(noisy) == code_hash(BASE)
    assert code_hash(BASE.replace("+ 10", "+ 11")) != code_hash(BASE)


async def test_exact_duplicate_is_rejected_and_names_the_first():
    novelty = NoveltyFilter(NoveltyConfig())
    novelty.remember("3", BASE)
    verdict, _ = await novelty.check(BASE.replace("total = 0", "total = 0  # again"))
    assert not verdict.novel and verdict.kind == "duplicate" and verdict.similar_to == "3"


async def test_renamed_variables_are_a_near_duplicate_but_a_tuned_constant_is_not():
    novelty = NoveltyFilter(NoveltyConfig(similarity_threshold=0.95))
    novelty.remember("0", BASE)
    renamed = BASE.replace("total", "acc").replace("value", "v")
    verdict, _ = await novelty.check(renamed)
    assert not verdict.novel and verdict.kind == "near-duplicate" and verdict.similarity == 1.0
    tuned, _ = await novelty.check(BASE.replace("value > 3", "value > 4"))
    assert tuned.novel
    different, _ = await novelty.check(BASE.replace("total -= value", "total -= value * value"))
    assert different.novel
    # One changed operator keeps a high Jaccard similarity but is a real change.
    swapped, _ = await novelty.check(BASE.replace("value > 3", "value >= 3"))
    assert swapped.novel
    builtin, _ = await novelty.check(BASE.replace("return total + 10", "return max(total, 10)"))
    assert builtin.novel


async def test_reordered_functions_are_a_near_duplicate():
    two = BASE.replace("# EVOLVE-BLOCK-END", "def other():\n    return 1\n# EVOLVE-BLOCK-END")
    reordered = two.replace("# EVOLVE-BLOCK-START\n", "# EVOLVE-BLOCK-START\ndef other():\n"
                                                     "    return 1\n\n").replace(
        "def other():\n    return 1\n# EVOLVE-BLOCK-END", "# EVOLVE-BLOCK-END")
    assert reordered != two
    novelty = NoveltyFilter(NoveltyConfig(similarity_threshold=0.75))
    novelty.remember("0", two)
    verdict, _ = await novelty.check(reordered)
    assert not verdict.novel and verdict.kind == "near-duplicate" and verdict.similarity < 1.0


async def test_judge_can_overrule_a_near_duplicate_and_its_calls_are_returned():
    calls = []

    async def judge(candidate: str, existing: str):
        calls.append((candidate, existing))
        return True, [{"model": "judge", "purpose": "novelty"}]

    novelty = NoveltyFilter(NoveltyConfig(), judge=judge)
    novelty.remember("0", BASE)
    verdict, _ = await novelty.check(BASE.replace("total", "acc"))
    assert verdict.novel and "judge found it novel" in verdict.reason
    assert len(calls) == 1 and verdict.calls == [{"model": "judge", "purpose": "novelty"}]


def test_fingerprint_covers_only_the_evolve_block():
    outside = "import os\n" * 50 + BASE
    assert jaccard(fingerprint(outside, 5).shingles, fingerprint(BASE, 5).shingles) == 1.0


async def test_disabled_filter_still_blocks_exact_duplicates():
    novelty = NoveltyFilter(NoveltyConfig(enabled=False))
    novelty.remember("0", BASE)
    assert not (await novelty.check(BASE))[0].novel
    assert (await novelty.check(BASE.replace("total", "acc")))[0].novel


async def test_the_same_edit_on_another_line_is_not_a_near_duplicate():
    code = BASE.replace("    total = 0\n", "    total = min(max(len(values), 1), 9)\n"
                                          "    other = min(max(total, 1), 9)\n")
    a = code.replace("min(max(len(values)", "min(min(len(values)")
    b = code.replace("min(max(total", "min(min(total")
    novelty = NoveltyFilter(NoveltyConfig(similarity_threshold=0.8))
    novelty.remember("0", a)
    verdict, _ = await novelty.check(b)
    assert verdict.novel
