"""Every reply of the corpus becomes the program it means, or is rejected with its real cause,
through the client path a run takes (litellm over HTTP -> Proposer -> child_from_reply)."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import pytest

from evolve.patch.mutation import MutationError, child_from_reply
from tests.engine.reply_corpus import CASES
from tests.engine.reply_path import CorpusServer, as_intended, propose_all


@pytest.fixture(scope="module")
def outcomes():
    with CorpusServer(CASES) as server:
        results = asyncio.run(propose_all(CASES, server))
        calls = dict(server.calls)
        sent = [request.json for request in server.chat_requests]
    return results, calls, sent


def test_the_corpus_is_large_and_covers_both_problems_and_every_kind():
    assert len(CASES) >= 60
    assert len({case.name for case in CASES}) == len(CASES)
    assert Counter(case.problem for case in CASES).keys() == {"circle_packing", "spot_single"}
    assert {case.kind for case in CASES} == {"diff", "full", "crossover", "repair"}
    assert sum(not case.should_accept for case in CASES) >= 15


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_reply(case, outcomes):
    results, calls, _ = outcomes
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


def test_a_cut_off_reply_is_resampled_with_the_reason(outcomes):
    """The second request of a case whose first reply was cut off tells the model why."""
    _, _, sent = outcomes
    retried = [r for r in sent if r["model"] == "truncated-then-retried"]
    assert len(retried) == 2
    feedback = retried[1]["messages"][-1]["content"]
    assert "cut off before its end (finish_reason=length)" in feedback
    assert "exact format" not in feedback


def test_rejections_never_contradict_themselves(outcomes):
    """No "must keep its 1 region(s); your version has 1": a count the message says is wrong
    differs from the one it says is right."""
    results, _, _ = outcomes
    for outcome in results.values():
        text = outcome.error_text or ""
        for wrong, right in re.findall(r"your version has (\d+ START and \d+ END) marker "
                                       r"line\(s\), the current program (\d+ and \d+)", text):
            assert wrong.replace(" START", "").replace(" END", "") != right
        assert not re.search(r"its (\d+) EVOLVE-BLOCK region\(s\).*your version has \1\b", text)


WRAPPERS = {
    "crlf": lambda text: text if "\r" in text else text.replace("\n", "\r\n"),
    "prose-before": lambda text: "Sure! Here is my answer.\n\n" + text,
    "prose-after": lambda text: text + "\n\nLet me know if you would like further changes.",
    "think-before": lambda text: ("<think>\nKeep the block's definitions; change what helps."
                                  "\n</think>\n\n" + text),
}


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_what_models_put_around_an_answer_does_not_change_the_program(wrapper):
    """Every reply that means a program means the same one with CRLF line endings, a sentence
    before or after it, or reasoning before it (read directly, without the server)."""
    wrap = WRAPPERS[wrapper]
    for case in (c for c in CASES if c.should_accept):
        entry = {"circle_packing": "pack_circles", "spot_single": "Policy"}[case.problem]
        child, errors = None, []
        for call, reply in enumerate(case.replies):
            try:
                child = child_from_reply(case.kind, case.parent_code, wrap(reply), 40_000,
                                         finish_reason=case.finish_reason(call), entry=entry)
                break
            except MutationError as exc:
                errors.append(exc.message)
        assert child is not None, f"{case.name}: {errors}"
        assert child.rstrip("\n") == (case.intended or "").rstrip("\n"), case.name


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_what_models_put_around_a_bad_reply_does_not_make_it_acceptable(wrapper):
    wrap = WRAPPERS[wrapper]
    for case in (c for c in CASES if not c.should_accept):
        entry = {"circle_packing": "pack_circles", "spot_single": "Policy"}[case.problem]
        with pytest.raises(MutationError) as info:
            child_from_reply(case.kind, case.parent_code, wrap(case.replies[0]), 40_000,
                             finish_reason=case.finish_reason(0), entry=entry)
        assert info.value.kind == case.reject, (case.name, info.value.message)
