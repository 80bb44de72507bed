"""Every reply of the corpus becomes the program it means, or is rejected with its real cause,
through the client path a run takes (litellm over HTTP -> Proposer -> child_from_reply)."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import pytest

from tests.engine.reply_corpus import CASES
from tests.engine.reply_path import CorpusServer, as_intended, propose_all


@pytest.fixture(scope="module")
def outcomes():
    with CorpusServer(CASES) as server:
        results = asyncio.run(propose_all(CASES, server))
        calls = dict(server.calls)
    return results, calls


def test_the_corpus_is_large_and_covers_both_problems_and_every_kind():
    assert len(CASES) >= 60
    assert len({case.name for case in CASES}) == len(CASES)
    assert Counter(case.problem for case in CASES).keys() == {"circle_packing", "spot_single"}
    assert {case.kind for case in CASES} == {"diff", "full", "crossover", "repair"}
    assert sum(not case.should_accept for case in CASES) >= 15


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_reply(case, outcomes):
    results, calls = outcomes
    outcome = results[case.name]
    # Every reply of the case was asked for, and no more (a rejected one is resampled).
    assert calls[case.name] == len(case.replies) == outcome.attempts
    if case.should_accept:
        assert outcome.error_text is None, outcome.error_text
    else:
        assert outcome.code is None, "accepted a reply that must be rejected"
        assert outcome.error_kind == case.reject, outcome.error_text
        assert case.says in (outcome.error_text or "")
    assert as_intended(case, outcome)


def test_rejections_never_contradict_themselves(outcomes):
    """No "must keep its 1 region(s); your version has 1": a count the message says is wrong
    differs from the one it says is right."""
    results, _ = outcomes
    for outcome in results.values():
        text = outcome.error_text or ""
        for wrong, right in re.findall(r"your version has (\d+ START and \d+ END) marker "
                                       r"line\(s\), the current program (\d+ and \d+)", text):
            assert wrong.replace(" START", "").replace(" END", "") != right
        assert not re.search(r"its (\d+) EVOLVE-BLOCK region\(s\).*your version has \1\b", text)
