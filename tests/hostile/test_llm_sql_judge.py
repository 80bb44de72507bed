"""An attack on the llm_sql judge through the real sandbox: rebinding the numpy function the
hit rate clamps with (a ufunc, which the tamper guard does not snapshot) must not change the
score. The judge binds its numpy functions when it is imported, before the candidate."""

from __future__ import annotations

from evolve.problem.discovery import find_problem
from tests.sandbox_helpers import candidate, evaluate


def test_patching_numpy_does_not_inflate_the_hit_rate():
    problem = find_problem("llm_sql")
    code = candidate("llm_sql_patch_numpy_lcp")
    honest = evaluate(code.replace("numpy.minimum = numpy.maximum", ""), problem,
                      stages=["quick"])
    patched = evaluate(code, problem, stages=["quick"])
    for result in (honest, patched):
        assert result.valid, (result.failure, result.reason)
        # The original order: no gain over itself, whatever numpy.minimum is.
        assert result.metrics["hit_term"] == 0.0
        assert result.metrics["hit_rate"] == result.metrics["base_hit_rate"] == 0.024903
