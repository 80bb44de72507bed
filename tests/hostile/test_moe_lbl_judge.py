"""moe_lbl on the judge/candidate API (issue 24): the judge keeps the model, the text, the
optimizer and every training step; the candidate's process gets each step's routing
statistics and sends back loss values and gradients.

While the balancing loss ran inside the trainer, a loss could reach the model, the optimizer and
the validation text through the collector, frames or module globals, train extra steps and
overwrite weights, and whatever it returned went into the backward pass. Here the same attacks
run through the real executor (quick stage: the CPU configuration for 3 steps) and reach
nothing, and every malformed reply is an invalid program with a reason.
"""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

pytest.importorskip("torch")

from evaluators import isolation  # noqa: E402
from evaluators.executors import LocalExecutor  # noqa: E402
from evaluators.result import (
    EvalResult,  # noqa: E402
    FailureKind,  # noqa: E402
)
from evolve.problem.spec import load_problem  # noqa: E402
from problems.moe_lbl import evaluate as ev  # noqa: E402
from problems.moe_lbl.boundary import InProcess  # noqa: E402
from problems.moe_lbl.trainer import CONFIGS, CandidateFailure, quick_config, train  # noqa: E402
from tests.hostile.test_judge_candidate import assert_failed  # noqa: E402
from tests.problems_moe.helpers import PROBLEM, baseline  # noqa: E402
from tests.sandbox_helpers import BEST_LEVEL, candidate  # noqa: E402


@pytest.fixture(scope="module")
def honest_quick() -> dict[str, float]:
    """What the global-batch loss scores on the quick stage (seed 0), trained in this process."""
    result = train(baseline("global_batch"), quick_config(CONFIGS["cpu"], ev.QUICK_STEPS), 0)
    m = result.metrics
    return {"score": ev.score_of(m["val_ce"], m["imbalance_l1"]), **m}


def run(code: str, *, path: str = "warm") -> EvalResult:
    """The quick stage through the real executor at the best level here."""
    async def go() -> EvalResult:
        executor = LocalExecutor(max_parallel=1, isolation=BEST_LEVEL,
                                 warm_start=path == "warm")
        try:
            return await executor.evaluate(load_problem(PROBLEM), code, stages=["quick"])
        finally:
            await executor.aclose()

    return asyncio.run(go())


def _hidden_files_reachable(level: str) -> bool:
    return not (level == "bwrap" or (level == "unshare" and isolation.is_root()))


@pytest.mark.parametrize("path", ["warm", pytest.param("cold", marks=pytest.mark.slow)])
def test_a_loss_finds_no_model_optimizer_or_text_and_trains_nothing(path, honest_quick):
    # In one process the collector alone handed it the model and the optimizer: it zeroed the
    # weights and stepped the optimizer on every call.
    result = run(candidate("moe_reach_model"), path=path)
    assert result.valid, (result.failure, result.reason)
    stdout = result.stages[0].stdout
    assert "models 0 optimizers 0 parameters 0 texts 0;" in stdout, stdout
    if not _hidden_files_reachable(BEST_LEVEL):
        # bubblewrap leaves the file out of the view; the unshare level covers it with
        # /dev/null (docs/trust-model.md): either way not one byte of the text.
        covered = ("corpus file DENIED",) + (
            ("corpus file READ 0 bytes",) if BEST_LEVEL == "unshare" else ())
        assert any(line in stdout for line in covered), stdout
    # The model it could not touch trained as the honest loss's did, bit for bit.
    stage = result.stages[0]
    assert stage.score == honest_quick["score"]
    assert stage.metrics["val_ce"] == honest_quick["val_ce"]
    assert stage.metrics["imbalance_l1"] == honest_quick["imbalance_l1"]


@pytest.mark.parametrize(("variant", "words"), [
    ("nan", "grad_probs has non-finite entries"),
    ("huge_reply", "above the limit"),
])
def test_a_forged_reply_of_the_candidates_process_is_an_invalid_program(variant, words):
    # The program rewrote the problem's helper in its own process: the judge checks the reply.
    result = run(candidate("moe_forged_reply", variant=variant))
    assert_failed(result, FailureKind.INVALID_OUTPUT, words)
    assert result.stages[0].feedback.startswith("step 0"), result.stages[0].feedback


class _Forging:
    """The candidate's side of the channel, with its reply rewritten as a hostile process
    would: everything else is the real message, the real loss and the real checks."""

    def __init__(self, rewrite):
        self._honest = InProcess(baseline("global_batch"))
        self._rewrite = rewrite
        self.seconds = 0.0

    def step(self, message):
        return self._rewrite(self._honest.step(message))


def _set(key, value):
    def rewrite(reply):
        return {**reply, key: value(reply[key]) if callable(value) else value}
    return rewrite


FORGERIES = {
    "nan gradient": (_set("grad_probs", lambda g: np.full_like(g, np.nan)),
                     "grad_probs has non-finite entries"),
    "inf gradient": (_set("grad_probs", lambda g: np.full_like(g, np.inf)),
                     "grad_probs has non-finite entries"),
    "huge finite gradient": (_set("grad_probs", lambda g: np.full_like(g, 1e38)),
                             "the gradient is not finite"),
    "wrong shape": (_set("grad_probs", lambda g: g[:, :, :-1]), "must have shape"),
    "flat gradient": (_set("grad_probs", lambda g: g.reshape(-1)), "must have shape"),
    "integer gradient": (_set("grad_probs", lambda g: g.astype(np.int64)), "float array"),
    "list gradient": (_set("grad_probs", lambda g: g.tolist()), "got list"),
    "gradient as text": (_set("grad_probs", "0.0"), "got str"),
    "nan loss value": (_set("losses", lambda v: [math.nan] * len(v)), "not a finite number"),
    "missing loss values": (_set("losses", lambda v: v[:1]), "must carry 8 loss values"),
    "loss value as text": (_set("losses", lambda v: ["0.1"] * len(v)), "not a finite number"),
    "nan bias update": (_set("bias", np.full((2, 4, 4), np.nan, np.float32)),
                        "bias has non-finite entries"),
    "wrong bias shape": (_set("bias", np.zeros((2, 4, 5), np.float32)), "bias must have shape"),
    "extra field": (lambda reply: {**reply, "weights": b"x"}, "unexpected fields"),
    "not a map": (lambda reply: [reply["losses"]], "must be a map"),
}


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_every_reply_that_breaks_the_steps_schema_is_refused_with_a_reason(name):
    rewrite, words = FORGERIES[name]
    with pytest.raises(CandidateFailure) as failure:
        train(_Forging(rewrite), CONFIGS["tiny"], seed=0)
    assert words in str(failure.value), str(failure.value)
    assert str(failure.value).startswith("step 0"), str(failure.value)


def test_the_problem_declares_its_text_hidden():
    # The judge reads the corpus from a descriptor; the candidate's sandbox has no such file.
    assert "data/corpus.json.gz" in load_problem(PROBLEM).config.problem.hidden
