"""The evaluator end to end (in process) on small candidates, and the baselines' figures."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from problems.llm_sql import evaluate as ev

BASELINES = Path(ev.__file__).resolve().parent / "baselines"
ORIGINAL = (BASELINES / "original_order.py").read_text()


def program(tmp_path: Path, body: str) -> str:
    path = tmp_path / "program.py"
    path.write_text(ORIGINAL + "\n\n" + textwrap.dedent(body))
    return str(path)


def test_the_formula_at_its_ends():
    assert ev.leaderboard_score(0.3, 0.3, 0.0) == (5.0, 0.0, 5.0)
    assert ev.leaderboard_score(1.0, 0.3, 12.0) == (95.0, 95.0, 0.0)
    assert ev.leaderboard_score(0.1, 0.3, 5.0)[1] == 0.0  # below the original order: clamped
    score, hit_term, runtime_term = ev.leaderboard_score(0.65, 0.3, 2.0)
    assert hit_term == pytest.approx(47.5) and runtime_term == pytest.approx(4.0)


def test_the_original_order_has_hit_term_zero():
    result = ev.evaluate(str(BASELINES / "original_order.py"), "quick")
    assert result["valid"], result["feedback"]
    assert result["metrics"]["hit_rate"] == result["metrics"]["base_hit_rate"]
    assert result["metrics"]["hit_term"] == 0.0
    assert 4.5 < result["score"] <= 5.0  # the runtime term alone


def test_a_program_that_drops_a_column_is_invalid(tmp_path):
    path = program(tmp_path, """
        def solve(df, col_merge=None, **kwargs):
            return merge_groups(df, col_merge).drop(columns=["faa"])
    """)
    result = ev.evaluate(path, "quick")
    assert not result["valid"]
    assert result["feedback"].startswith("table airports: output row 0 has 4 fields, expected 5")


def test_a_program_that_edits_a_cell_is_invalid(tmp_path):
    path = program(tmp_path, """
        def solve(df, col_merge=None, **kwargs):
            out = merge_groups(df, col_merge)
            out.iloc[7, 1] = out.iloc[7, 1] + " "
            return out
    """)
    result = ev.evaluate(path, "quick")
    assert not result["valid"]
    assert "output row 7" in result["feedback"] and "closest is input row 7" in result["feedback"]


def test_a_program_returning_a_subclass_or_nan_is_invalid(tmp_path):
    path = program(tmp_path, """
        import pandas as pd
        class Frame(pd.DataFrame):
            pass
        def solve(df, col_merge=None, **kwargs):
            return Frame(merge_groups(df, col_merge))
    """)
    assert "must return a pandas DataFrame, got Frame" in ev.evaluate(path, "quick")["feedback"]
    path = program(tmp_path, """
        def solve(df, col_merge=None, **kwargs):
            out = merge_groups(df, col_merge)
            return out.reindex(range(1, len(out) + 1))
    """)
    result = ev.evaluate(path, "quick")
    assert not result["valid"] and "is float, not text" in result["feedback"]


def test_a_program_that_raises_is_invalid_with_its_traceback(tmp_path):
    path = program(tmp_path, """
        def solve(df, col_merge=None, **kwargs):
            raise RuntimeError("no plan")
    """)
    result = ev.evaluate(path, "quick")
    assert not result["valid"]
    assert "solve() failed on table airports" in result["feedback"]
    assert "RuntimeError: no plan" in result["feedback"]


def test_per_row_field_orders_are_scored(tmp_path):
    # Reversing the fields of every other row only: a valid output, scored on its own strings.
    path = program(tmp_path, """
        import pandas as pd
        def solve(df, col_merge=None, **kwargs):
            rows = merge_groups(df, col_merge).to_numpy().tolist()
            return pd.DataFrame([row[::-1] if i % 2 else row for i, row in enumerate(rows)])
    """)
    result = ev.evaluate(path, "quick")
    assert result["valid"], result["feedback"]
    assert result["metrics"]["hit_rate"] != result["metrics"]["base_hit_rate"]


# Hit rates of the baselines (deterministic), as in README.md.
ORIGINAL_HITS = {"flights": 0.110521, "planes": 0.060898, "airports": 0.024903,
                 "weather": 0.151585}
SORTED_HITS = {"flights": 0.141511, "planes": 0.906417, "airports": 0.325493,
               "weather": 0.300204}


def test_the_original_column_orders_hit_rates():
    assert {n: round(b, 6) for n, b in ev.BASE.items()} == ORIGINAL_HITS


def test_the_sorted_rows_baseline_figures():
    result = ev.evaluate(str(BASELINES / "sorted_rows.py"), "full")
    assert result["valid"], result["feedback"]
    assert {n: result["metrics"][f"hit_rate_{n}"] for n in ORIGINAL_HITS} == SORTED_HITS
    assert result["metrics"]["hit_term"] == pytest.approx(34.4852, abs=1e-4)


def test_the_ggr_baseline_on_the_quick_stage():
    result = ev.evaluate(str(BASELINES / "ggr.py"), "quick")
    assert result["valid"], result["feedback"]
    assert result["metrics"]["hit_rate_airports"] == GGR_HITS["airports"]


GGR_HITS = {"flights": 0.281635, "planes": 0.929268, "airports": 0.32437, "weather": 0.386064}


@pytest.mark.slow
def test_the_ggr_baseline_figures():  # about 15 s of CPU
    result = ev.evaluate(str(BASELINES / "ggr.py"), "full")
    assert result["valid"], result["feedback"]
    assert {n: result["metrics"][f"hit_rate_{n}"] for n in GGR_HITS} == GGR_HITS


def test_lying_cells_are_judged_by_their_genuine_text(tmp_path):
    # Cells that claim to equal anything (and hash like the right text) while holding other
    # text: the check and the score read the text itself.
    path = program(tmp_path, """
        import pandas as pd
        class Liar(str):
            def __eq__(self, other):
                return True
            def __hash__(self):
                return hash(self.claimed)
        def solve(df, col_merge=None, **kwargs):
            rows = merge_groups(df, col_merge).to_numpy().tolist()
            out = []
            for row in rows:
                cells = []
                for cell in row:
                    liar = Liar("x")
                    liar.claimed = cell
                    cells.append(liar)
                out.append(cells)
            return pd.DataFrame(out, dtype=object)
    """)
    result = ev.evaluate(path, "quick")
    assert not result["valid"]
    assert "output row 0 ['x', 'x', 'x', 'x', 'x'] is not any input row" in result["feedback"]
