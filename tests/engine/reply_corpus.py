"""A corpus of LLM replies, written the way GPT-, Claude-, Qwen- and DeepSeek-class models write
them, to the parents of two built-in problems (circle_packing and spot_single), each labelled
with the program it means or the rejection it deserves.

Labels do not come from the code under test: an intended program is the parent with the
change the reply describes made by plain text replacement (each `old` text must occur exactly
once in the parent; `_change` checks that when this module is imported).

Used by tests/engine/test_reply_corpus.py (every case through LLMClient -> Proposer ->
child_from_reply against the scripted HTTP server) and benchmarks/reply_acceptance.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CP = (ROOT / "problems/circle_packing/initial.py").read_text()
SS = (ROOT / "problems/spot_single/initial.py").read_text()
PARENTS = {"circle_packing": CP, "spot_single": SS}


@dataclass(frozen=True)
class Case:
    name: str
    style: str
    problem: str                  # circle_packing | spot_single
    kind: str                     # the mutation asked: diff | full | crossover | repair
    replies: tuple[str, ...]      # one per call, in order (a rejected reply is resampled)
    intended: str | None = None   # the program meant; None: the reply must be rejected
    reject: str | None = None     # the rejection kind expected
    finish: tuple[str, ...] = ()  # finish_reason per reply ("stop" where not given)
    says: str = ""                # the rejection message must contain this
    parent: str | None = None     # the parent when it is not the problem's initial program

    @property
    def should_accept(self) -> bool:
        return self.intended is not None

    @property
    def parent_code(self) -> str:
        return self.parent if self.parent is not None else PARENTS[self.problem]

    def finish_reason(self, call: int) -> str:
        return self.finish[call] if call < len(self.finish) else "stop"


def _change(code: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        assert code.count(old) == 1, f"corpus bug: {old!r} occurs {code.count(old)} times"
        code = code.replace(old, new)
    return code


def _block(code: str) -> str:
    """The lines between the markers."""
    start = code.index("# EVOLVE-BLOCK-START\n") + len("# EVOLVE-BLOCK-START\n")
    return code[start:code.index("# EVOLVE-BLOCK-END")]


def _unmarked(code: str) -> str:
    return code.replace("# EVOLVE-BLOCK-START\n", "").replace("# EVOLVE-BLOCK-END\n", "")


def _tabs(code: str) -> str:
    """Leading groups of four spaces as tabs, as some models indent."""
    out = []
    for line in code.split("\n"):
        stripped = line.lstrip(" ")
        width = len(line) - len(stripped)
        out.append("\t" * (width // 4) + " " * (width % 4) + stripped)
    return "\n".join(out)


def _sr(old: str, new: str) -> str:
    return f"<<<<<<< SEARCH\n{old}\n=======\n{new}\n>>>>>>> REPLACE"


# ---------------------------------------------------------------- the changes replies make

ROUNDS_OLD = ("def max_radii(centres: list[tuple[float, float]], rounds: int = 50) "
              "-> list[float]:")
ROUNDS_NEW = ROUNDS_OLD.replace("rounds: int = 50", "rounds: int = 200")
CP_ROUNDS = _change(CP, (ROUNDS_OLD, ROUNDS_NEW))

PHASE_OLD, PHASE_NEW = "OUTER_PHASE = 0.10", "OUTER_PHASE = 0.17"
INNER_OLD, INNER_NEW = "INNER_RADIUS = 0.22", "INNER_RADIUS = 0.24"
CP_PHASE = _change(CP, (PHASE_OLD, PHASE_NEW), (INNER_OLD, INNER_NEW))

SHRINK_OLD = """                if radii[i] + radii[j] > d:
                    scale = d / (radii[i] + radii[j])
                    radii[i] *= scale
                    radii[j] *= scale
                    changed = True"""
SHRINK_NEW = """                overlap = radii[i] + radii[j] - d
                if overlap > 0:
                    # Shrink the larger circle more: it has more room to give.
                    share = radii[i] / (radii[i] + radii[j])
                    radii[i] -= overlap * share
                    radii[j] -= overlap * (1 - share)
                    changed = True"""
CP_SHRINK = _change(CP, (SHRINK_OLD, SHRINK_NEW))

GRID_OLD = _block(CP)[:_block(CP).index("def max_radii")]
GRID_NEW = '''# Five staggered rows (a hexagonal arrangement) scaled to the square; radii then grown.
ROWS = (5, 6, 5, 5, 5)
MARGIN = 0.02


def layout(n: int) -> list[tuple[float, float]]:
    centres = []
    for row, count in enumerate(ROWS):
        y = MARGIN + (1 - 2 * MARGIN) * (row + 0.5) / len(ROWS)
        shift = 0.25 / count if row % 2 else 0.0
        for k in range(count):
            x = MARGIN + (1 - 2 * MARGIN) * ((k + 0.5) / count + shift)
            centres.append((min(x, 1 - MARGIN), y))
    return centres[:n]


'''
CP_GRID = _change(CP, (GRID_OLD, GRID_NEW))

MARGIN_OLD = "        if ticks_needed >= ticks_left:"
MARGIN_NEW = "        if ticks_needed + 1 >= ticks_left:"
SS_MARGIN = _change(SS, (MARGIN_OLD, MARGIN_NEW))

SPOT_OLD = """        if state.spot_available:
            return SPOT
        return NONE"""
SPOT_NEW = """        if state.spot_available:
            return SPOT
        if state.cluster == ON_DEMAND and ticks_left - ticks_needed < 4:
            return ON_DEMAND  # the restart is already paid: keep going
        return NONE"""
SS_SPOT = _change(SS, (SPOT_OLD, SPOT_NEW))

CEIL_OLD = "        ticks_needed = -(-(state.work_left_s + 2 * self.overhead) // self.gap)"
CEIL_NEW = ("        ticks_needed = math.ceil((state.work_left_s + 2 * self.overhead) / self.gap)"
            " + 1")
SS_CEIL_IMPORT = _change(SS, (CEIL_OLD, CEIL_NEW),
                         ("# EVOLVE-BLOCK-START\nclass Policy",
                          "# EVOLVE-BLOCK-START\nimport math\n\n\nclass Policy"))

POLICY_OLD = _block(SS)
POLICY_NEW = '''class Policy:
    """Spot while it is available; during an outage wait only while the slack covers it, then
    run on-demand and stay there until spot returns with room to spare (a switch costs a
    restart)."""

    def __init__(self, scenario):
        self.gap = scenario.gap_s
        self.overhead = scenario.restart_overhead_s
        self.outage_ticks = 0

    def decide(self, state):
        if state.work_left_s <= 0:
            return NONE
        ticks_left = state.time_left_s // self.gap
        ticks_needed = -(-(state.work_left_s + 2 * self.overhead) // self.gap)
        slack = ticks_left - ticks_needed
        if slack <= 0:
            return ON_DEMAND
        if state.spot_available:
            self.outage_ticks = 0
            if state.cluster == ON_DEMAND and slack < 3:
                return ON_DEMAND
            return SPOT
        self.outage_ticks += 1
        if state.cluster == ON_DEMAND or self.outage_ticks > slack // 2:
            return ON_DEMAND
        return NONE
'''
SS_HYST = _change(SS, (POLICY_OLD, POLICY_NEW))

# A broken parent for repair replies: a misspelt name (NameError when run).
CP_BROKEN = _change(CP, ("for x, y in centres]", "for x, y in centers]"))

CASES: list[Case] = []


def case(name: str, style: str, problem: str, kind: str, *replies: str, **labels) -> None:
    CASES.append(Case(name, style, problem, kind, tuple(replies), **labels))


# ================================================================ replies that mean a program

# ---- SEARCH/REPLACE as asked (the baseline every style is compared with)
case("gpt-diff-rounds", "search-replace", "circle_packing", "diff",
     "More relaxation rounds let the shrinking converge on crowded layouts, so fewer radii are "
     "left smaller than necessary.\n\n" + _sr(ROUNDS_OLD, ROUNDS_NEW) + "\n",
     intended=CP_ROUNDS)
case("claude-diff-two-blocks", "search-replace", "circle_packing", "diff",
     "I'll rotate the outer ring a little further and push the inner ring outwards, which "
     "should free space near the corners.\n\n```python\n" + _sr(PHASE_OLD, PHASE_NEW)
     + "\n```\n\n```python\n" + _sr(INNER_OLD, INNER_NEW) + "\n```\n\nBoth edits are inside "
     "the EVOLVE-BLOCK and keep the rest of the program intact.",
     intended=CP_PHASE)
case("qwen-diff-spot", "search-replace", "spot_single", "diff",
     "Switch to on-demand one tick earlier so a late preemption never forces an expensive "
     "restart.\n\n" + _sr(MARGIN_OLD, MARGIN_NEW),
     intended=SS_MARGIN)
case("deepseek-diff-indent-tells", "search-replace", "spot_single", "diff",
     "When spot is gone, wait only while the slack is comfortable.\n\n"
     + _sr("        return NONE", "        return NONE if ticks_left - ticks_needed > 6 else "
           "ON_DEMAND"),
     intended=_change(SS, ("            return SPOT\n        return NONE",
                           "            return SPOT\n        return NONE if ticks_left - "
                           "ticks_needed > 6 else ON_DEMAND")))

# ---- CRLF line endings (Windows-side proxies, some hosted endpoints)
case("crlf-diff", "crlf", "spot_single", "diff",
     ("Keep running on-demand once we have paid for its start.\n\n"
      + _sr(SPOT_OLD, SPOT_NEW) + "\n").replace("\n", "\r\n"),
     intended=SS_SPOT)
case("crlf-full", "crlf", "circle_packing", "full",
     ("A gentler shrink that takes more from the larger circle.\n\n```python\n" + CP_SHRINK
      + "```\n").replace("\n", "\r\n"),
     intended=CP_SHRINK)
case("crlf-diff-fenced", "crlf", "circle_packing", "diff",
     ("```python\n" + _sr(ROUNDS_OLD, ROUNDS_NEW) + "\n```\r\n").replace("\n", "\r\n"),
     intended=CP_ROUNDS)

# ---- fences with an info string after the language, or another spelling of it
case("fence-title", "fence-info-string", "circle_packing", "full",
     "Here is the complete program with a hexagonal row layout:\n\n"
     "```python title=\"initial.py\"\n" + CP_GRID + "```\n",
     intended=CP_GRID)
case("fence-py-linenos", "fence-info-string", "spot_single", "full",
     "```py {linenos=true}\n" + SS_HYST + "```\n\nThe policy now tolerates short outages.",
     intended=SS_HYST)
case("fence-python3-caps", "fence-info-string", "spot_single", "diff",
     "```Python3\n" + _sr(MARGIN_OLD, MARGIN_NEW) + "\n```",
     intended=SS_MARGIN)
case("fence-tilde", "fence-info-string", "circle_packing", "full",
     "Rewritten with a proportional shrink:\n\n~~~python\n" + CP_SHRINK + "~~~\n",
     intended=CP_SHRINK)
case("fence-python-colon-path", "fence-info-string", "spot_single", "full",
     "Updated file:\n\n```python:initial.py\n" + SS_SPOT + "```\n",
     intended=SS_SPOT)
case("fence-file-name-only", "fence-info-string", "circle_packing", "diff",
     "```initial.py\n" + CP_ROUNDS + "```\n",
     intended=CP_ROUNDS)

# ---- several fences: only one of them is the program
case("fences-old-then-new", "several-fences", "circle_packing", "full",
     "The current shrinking step treats both circles alike:\n\n```python\n" + SHRINK_OLD.strip()
     + "\n```\n\nTaking more from the larger circle keeps small ones usable. Full program:\n\n"
     "```python\n" + CP_SHRINK + "```\n",
     intended=CP_SHRINK)
case("fences-output-then-program", "several-fences", "circle_packing", "full",
     "With the current layout the evaluator reports:\n\n```\nsum_radii=2.5431 min_radius=0.0412"
     "\n```\n\nA staggered grid should do better:\n\n```python\n" + CP_GRID + "```\n",
     intended=CP_GRID)
case("fences-program-then-snippet", "several-fences", "spot_single", "full",
     "```python\n" + SS_HYST + "```\n\nThe key change is the outage counter:\n\n```python\n"
     "        self.outage_ticks += 1\n        if state.cluster == ON_DEMAND or "
     "self.outage_ticks > slack // 2:\n            return ON_DEMAND\n```\n",
     intended=SS_HYST)
case("fences-longer-harness", "several-fences", "circle_packing", "diff",
     "Only the block changes; here it is in full:\n\n```python\n" + _block(CP_ROUNDS)
     + "```\n\nTo check it locally you can plot the packing (not part of the answer):\n\n"
     "```python\nimport matplotlib.pyplot as plt\nfrom matplotlib.patches import Circle\n\n"
     "from initial import pack_circles\n\n\ndef draw(path: str = 'packing.png') -> None:\n"
     "    fig, ax = plt.subplots(figsize=(6, 6))\n    for x, y, r in pack_circles():\n"
     "        ax.add_patch(Circle((x, y), r, fill=False))\n    ax.set_xlim(0, 1)\n"
     "    ax.set_ylim(0, 1)\n    ax.set_aspect('equal')\n    total = sum(r for _, _, r in "
     "pack_circles())\n    ax.set_title(f'sum of radii = {total:.4f}')\n"
     "    fig.savefig(path, dpi=150)\n\n\nif __name__ == '__main__':\n    draw()\n```\n",
     intended=CP_ROUNDS)

# ---- reasoning models: <think> before the answer
THINK_CP = ("Okay, so the task is to improve the circle packing. The program places a centre "
            "circle, an inner ring of 8 and an outer ring, then max_radii shrinks overlapping "
            "pairs for 50 rounds. With 26 circles the shrinking might not converge in 50 rounds "
            "(each round only fixes pairwise overlaps), so some radii could stay smaller than "
            "needed... Actually no, shrinking only makes radii smaller; more rounds means the "
            "loop stops when nothing changes, so raising the cap is safe. Let me raise it.\n")
case("r1-think-diff", "think", "circle_packing", "diff",
     "<think>\n" + THINK_CP + "</think>\n\nRaising the round cap lets the relaxation finish.\n\n"
     + _sr(ROUNDS_OLD, ROUNDS_NEW) + "\n",
     intended=CP_ROUNDS)
case("r1-think-full", "think", "spot_single", "full",
     "<think>\nThe greedy policy waits whenever spot is unavailable. Long outages then burn "
     "slack until the guard forces on-demand late. A counter of outage ticks compared with the "
     "remaining slack should decide earlier. Also, once on on-demand, switching back to spot "
     "costs a restart, so stay when slack is small.\n</think>\n\n```python\n" + SS_HYST
     + "```\n",
     intended=SS_HYST)
case("qwen3-close-only", "think-close-only", "spot_single", "diff",
     "Okay, let me look at the decide method. When spot is unavailable it returns NONE even "
     "if we are already on an on-demand cluster, which throws away a paid restart. I'll keep "
     "on-demand when the slack is small.\n</think>\n\nKeep an on-demand cluster running when "
     "little slack is left.\n\n" + _sr(SPOT_OLD, SPOT_NEW) + "\n",
     intended=SS_SPOT)
case("qwen3-close-only-full", "think-close-only", "circle_packing", "full",
     "Hmm, rows might pack better than rings. 5+6+5+5+5 = 26. Stagger odd rows by a quarter "
     "cell.\n</think>\n\n```python\n" + CP_GRID + "```",
     intended=CP_GRID)
case("think-leading-whitespace", "think-whitespace", "circle_packing", "diff",
     "\n\n  <think>\n" + THINK_CP + "</think>\n\n" + _sr(ROUNDS_OLD, ROUNDS_NEW),
     intended=CP_ROUNDS)
case("thinking-tag-newline", "think-whitespace", "spot_single", "diff",
     "\n<thinking>\nThe guard `ticks_needed >= ticks_left` leaves no spare tick. One tick of "
     "margin avoids a forced switch right after a preemption.\n</thinking>\n\n"
     + _sr(MARGIN_OLD, MARGIN_NEW),
     intended=SS_MARGIN)
case("think-draft-blocks", "think-drafts", "circle_packing", "diff",
     "<think>\nFirst idea: rotate the outer ring.\n\n" + _sr(PHASE_OLD, "OUTER_PHASE = 0.30")
     + "\n\nBut 0.30 is almost a full cell rotation for 17 circles, pointless. Better: make "
     "the shrink proportional to size.\n\n" + _sr(SHRINK_OLD, SHRINK_NEW.replace("share", "w"))
     + "\n\nWait, `w` is a bad name; use `share`.\n</think>\n\nShrink overlapping pairs "
     "in proportion to their radii.\n\n" + _sr(SHRINK_OLD, SHRINK_NEW) + "\n",
     intended=CP_SHRINK)
case("think-draft-blocks-close-only", "think-drafts", "spot_single", "diff",
     "Draft:\n" + _sr(MARGIN_OLD, "        if ticks_needed + 3 >= ticks_left:")
     + "\nThree ticks is too conservative, it will run on-demand for hours.\n</think>\n"
     "One spare tick is enough.\n" + _sr(MARGIN_OLD, MARGIN_NEW),
     intended=SS_MARGIN)
case("harmony-channels", "think", "spot_single", "diff",
     "<|channel|>analysis<|message|>We need cheaper runs. Keep on-demand when slack small."
     "<|end|><|start|>assistant<|channel|>final<|message|>Keep a running on-demand cluster "
     "when the slack is small.\n\n" + _sr(SPOT_OLD, SPOT_NEW) + "<|return|>",
     intended=SS_SPOT)

case("qwen3-empty-think", "think-whitespace", "circle_packing", "full",
     "\n<think>\n\n</think>\n\n```python\n" + CP_PHASE + "```",
     intended=CP_PHASE)
case("r1-think-final-repeated", "think", "spot_single", "full",
     "<think>\nDraft of the class:\n```python\n" + POLICY_NEW.replace("slack < 3", "slack < 5")
     + "```\nslack < 5 keeps on-demand too long; 3 is enough.\n</think>\n\nFinal program:\n\n"
     "```python\n" + SS_HYST + "```\n",
     intended=SS_HYST)

# ---- a cut-off reply is not used; the retry is
case("truncated-then-retried", "truncated-retried", "circle_packing", "full",
     "A hexagonal layout packs denser:\n\n```python\n" + CP_GRID[:1400],
     "Shorter this time: only the edit.\n\n" + _sr(ROUNDS_OLD, ROUNDS_NEW),
     finish=("length", "stop"), intended=CP_ROUNDS)
case("unclosed-block-then-retried", "truncated-retried", "spot_single", "diff",
     "Two edits.\n\n" + _sr(MARGIN_OLD, MARGIN_NEW) + "\n\n<<<<<<< SEARCH\n" + SPOT_OLD
     + "\n=======\n        if state.spot_available:\n",
     _sr(MARGIN_OLD, MARGIN_NEW) + "\n",
     intended=SS_MARGIN)

# ---- unified diffs
case("unified-fenced", "unified-diff", "circle_packing", "diff",
     "Raise the relaxation cap:\n\n```diff\n--- a/initial.py\n+++ b/initial.py\n"
     "@@ -29,7 +29,7 @@ def layout(n: int) -> list[tuple[float, float]]:\n"
     "     return centres\n \n \n-" + ROUNDS_OLD + "\n+" + ROUNDS_NEW + "\n"
     '     """Largest radii for fixed centres: start at the wall distance, shrink overlapping '
     'pairs."""\n     radii = [min(x, y, 1 - x, 1 - y) for x, y in centres]\n```\n',
     intended=CP_ROUNDS)
case("unified-bare-wrong-numbers", "unified-diff", "spot_single", "diff",
     "--- initial.py\n+++ initial.py\n@@ -31,5 +31,7 @@\n"
     "         if state.spot_available:\n             return SPOT\n"
     "+        if state.cluster == ON_DEMAND and ticks_left - ticks_needed < 4:\n"
     "+            return ON_DEMAND  # the restart is already paid: keep going\n"
     "         return NONE\n\nThis keeps a paid-for on-demand cluster when the slack is short.",
     intended=SS_SPOT)
case("unified-blank-context-unprefixed", "unified-diff", "circle_packing", "diff",
     "```diff\n@@ -5,9 +5,9 @@\n # A centre circle and two concentric rings; radii are then "
     "grown as large as the layout allows.\n INNER_COUNT = 8\n-" + INNER_OLD + "\n+" + INNER_NEW
     + "\n OUTER_RADIUS = 0.40\n-" + PHASE_OLD + "\n+" + PHASE_NEW + "\n MARGIN = 0.05\n\n\n"
     " def layout(n: int) -> list[tuple[float, float]]:\n```\n",
     intended=CP_PHASE)
case("git-diff-header", "unified-diff", "spot_single", "diff",
     "```diff\ndiff --git a/initial.py b/initial.py\nindex 3f2a9c1..9c1be07 100644\n"
     "--- a/initial.py\n+++ b/initial.py\n@@ -29,7 +29,7 @@ class Policy:\n"
     "         ticks_left = state.time_left_s // self.gap\n"
     "         ticks_needed = -(-(state.work_left_s + 2 * self.overhead) // self.gap)\n"
     "-" + MARGIN_OLD + "\n+" + MARGIN_NEW + "\n             return ON_DEMAND\n```\n\n"
     "One spare tick avoids the forced late switch.",
     intended=SS_MARGIN)
case("v4a-begin-patch", "unified-diff", "spot_single", "diff",
     "*** Begin Patch\n*** Update File: initial.py\n@@ class Policy:\n@@     def decide(self, "
     "state):\n         ticks_needed = -(-(state.work_left_s + 2 * self.overhead) // self.gap)"
     "\n-" + MARGIN_OLD + "\n+" + MARGIN_NEW + "\n             return ON_DEMAND\n"
     "*** End Patch\n",
     intended=SS_MARGIN)
case("unified-two-hunks", "unified-diff", "circle_packing", "diff",
     "```diff\n--- a/initial.py\n+++ b/initial.py\n@@ -8,3 +8,3 @@\n OUTER_RADIUS = 0.40\n-"
     + PHASE_OLD + "\n+" + PHASE_NEW + "\n MARGIN = 0.05\n@@ -6,2 +6,2 @@\n INNER_COUNT = 8\n-"
     + INNER_OLD + "\n+" + INNER_NEW + "\n```\n",
     intended=CP_PHASE)

# ---- SEARCH/REPLACE with a file name before each block (aider style) and a summary after
case("aider-filenames", "search-replace", "circle_packing", "diff",
     "### Changes\n\n1. Rotate the outer ring.\n2. Push the inner ring out.\n\ninitial.py\n"
     "```python\n" + _sr(PHASE_OLD, PHASE_NEW) + "\n```\n\ninitial.py\n```python\n"
     + _sr(INNER_OLD, INNER_NEW) + "\n```\n\n**Expected effect:** fewer corner gaps.",
     intended=CP_PHASE)

# ---- the same final program twice (restated at the end)
case("fences-repeated-final", "several-fences", "circle_packing", "full",
     "```python\n" + CP_ROUNDS + "```\n\nTo summarise, the final program is:\n\n```python\n"
     + CP_ROUNDS + "```\n",
     intended=CP_ROUNDS)

# ---- the block with its markers but without the module header
case("block-markers-no-header", "block-no-header", "spot_single", "full",
     "Only the evolvable part changes:\n\n```python\n# EVOLVE-BLOCK-START\n" + POLICY_NEW
     + "# EVOLVE-BLOCK-END\n```\n",
     intended=SS_HYST)
case("block-markers-no-header-diff-asked", "block-no-header", "circle_packing", "diff",
     "```python\n# EVOLVE-BLOCK-START\n" + _block(CP_SHRINK) + "# EVOLVE-BLOCK-END\n```",
     intended=CP_SHRINK)
case("header-docstring-left-out", "block-no-header", "circle_packing", "full",
     "```python\nimport math\n\n" + CP_SHRINK[CP_SHRINK.index("# EVOLVE-BLOCK-START"):] + "```",
     intended=CP_SHRINK)
case("header-constants-only", "block-no-header", "spot_single", "crossover",
     "Taking B's outage counter into A's structure:\n\n```python\nNONE, SPOT, ON_DEMAND = 0, 1, "
     "2\n\n\n# EVOLVE-BLOCK-START\n" + POLICY_NEW + "# EVOLVE-BLOCK-END\n```\n",
     intended=SS_HYST)

# ---- the block's body alone
case("body-only-diff-asked", "body-only", "spot_single", "diff",
     "Rather than a diff, here is the whole policy class (it is short):\n\n```python\n"
     + POLICY_NEW + "```\n",
     intended=SS_HYST)
case("body-only-full", "body-only", "circle_packing", "full",
     "```python\n" + _block(CP_GRID) + "```\n",
     intended=CP_GRID)
case("body-only-crossover", "body-only", "spot_single", "crossover",
     "From parent A the guard, from parent B the idea of staying on on-demand:\n\n```python\n"
     + _block(SS_SPOT) + "```",
     intended=SS_SPOT)

# ---- the whole program without markers
case("full-unmarked", "full-no-markers", "circle_packing", "full",
     "Here's the revised program:\n\n```python\n" + _unmarked(CP_ROUNDS) + "```\n",
     intended=CP_ROUNDS)
case("full-unmarked-new-import", "full-no-markers", "spot_single", "full",
     "Using math.ceil makes the tick arithmetic clearer, with one spare tick:\n\n```python\n"
     + _change(_unmarked(SS), ("NONE, SPOT, ON_DEMAND = 0, 1, 2",
                               "import math\n\nNONE, SPOT, ON_DEMAND = 0, 1, 2"),
               (CEIL_OLD, CEIL_NEW)) + "```\n",
     intended=SS_CEIL_IMPORT)
case("full-unmarked-diff-asked", "full-no-markers", "circle_packing", "diff",
     "I rewrote the layout; complete file below.\n\n```python\n" + _unmarked(CP_GRID) + "```",
     intended=CP_GRID)

# ---- the final END marker left out (nothing follows it in the parent)
case("missing-final-end", "missing-end-marker", "circle_packing", "full",
     "```python\n" + CP_PHASE.replace("# EVOLVE-BLOCK-END\n", "") + "```\n",
     intended=CP_PHASE)

# ---- JSON-wrapped answers
case("json-code-full", "json", "circle_packing", "full",
     json.dumps({"explanation": "Proportional shrink of overlapping pairs.",
                 "code": CP_SHRINK}, indent=2),
     intended=CP_SHRINK)
case("json-fenced-body", "json", "spot_single", "full",
     "```json\n" + json.dumps({"reasoning": "Count outage ticks against the slack.",
                               "code": POLICY_NEW}) + "\n```",
     intended=SS_HYST)
case("json-diff-field", "json", "spot_single", "diff",
     json.dumps({"summary": "one spare tick", "diff": _sr(MARGIN_OLD, MARGIN_NEW)}),
     intended=SS_MARGIN)

case("json-code-fenced-inside", "json", "circle_packing", "full",
     json.dumps({"idea": "hexagonal rows", "code": "```python\n" + CP_GRID + "```"}),
     intended=CP_GRID)

# ---- tabs in a reply for a space-indented parent
case("tabs-diff", "tabs", "spot_single", "diff",
     "Keep on-demand once started:\n\n" + _tabs(_sr(SPOT_OLD, SPOT_NEW)) + "\n",
     intended=SS_SPOT)
case("tabs-full", "tabs", "circle_packing", "full",
     "```python\n" + _tabs(CP_SHRINK) + "```\n",
     intended=CP_SHRINK)

# ---- whole programs as asked (markers kept), crossover and repair
case("full-marked", "full-marked", "spot_single", "full",
     "The new policy counts outage ticks.\n\n```python\n" + SS_HYST + "```\n",
     intended=SS_HYST)
case("crossover-marked", "full-marked", "circle_packing", "crossover",
     "From parent A the ring layout, from parent B the longer relaxation.\n\n```python\n"
     + CP_ROUNDS + "```\n",
     intended=CP_ROUNDS)
case("repair-diff", "repair", "circle_packing", "repair",
     "The list comprehension uses `centers`, which is not defined (the parameter is "
     "`centres`).\n\n" + _sr("    radii = [min(x, y, 1 - x, 1 - y) for x, y in centers]",
                             "    radii = [min(x, y, 1 - x, 1 - y) for x, y in centres]"),
     intended=CP, parent=CP_BROKEN)
case("repair-full-crlf", "repair", "circle_packing", "repair",
     ("NameError: `centers` should be `centres`.\n\n```python\n" + CP + "```\n")
     .replace("\n", "\r\n"),
     intended=CP, parent=CP_BROKEN)

# ---- unfenced code (small local models)
case("bare-program", "bare-code", "circle_packing", "full",
     "Here is the improved program:\n\n" + CP_SHRINK + "\nThis version shrinks the larger "
     "circle more.",
     intended=CP_SHRINK)
case("bare-program-prose-with-assignment", "bare-code", "circle_packing", "full",
     "Setting OUTER_PHASE = 0.17 and INNER_RADIUS = 0.24 spreads the rings:\n\n" + CP_PHASE
     + "\nThe rest of the program is as before.",
     intended=CP_PHASE)

# ================================================================ replies to reject

case("length-complete-looking", "truncated", "circle_packing", "diff",
     "Two changes.\n\n" + _sr(PHASE_OLD, PHASE_NEW) + "\n\n" + _sr(INNER_OLD, INNER_NEW)
     + "\n\nNext I will also", finish=("length",),
     reject="truncated", says="finish_reason=length")
case("length-full-cut", "truncated", "spot_single", "full",
     "```python\n" + SS_HYST[:900], finish=("length",),
     reject="truncated", says="cut off")
case("unclosed-fence-stop", "truncated", "circle_packing", "full",
     "Full program:\n\n```python\n" + CP_GRID[:1200],
     reject="truncated", says="never closed")
case("unclosed-search-block", "truncated", "spot_single", "diff",
     _sr(MARGIN_OLD, MARGIN_NEW) + "\n\n<<<<<<< SEARCH\n" + SPOT_OLD + "\n=======\n"
     "        if state.spot_available:\n            return SPOT\n",
     reject="truncated", says="ends inside SEARCH/REPLACE block 2")
case("unclosed-think", "truncated", "circle_packing", "diff",
     "<think>\n" + THINK_CP + "Now the edit:\n" + _sr(ROUNDS_OLD, ROUNDS_NEW) + "\nAlso maybe",
     finish=("length",), reject="truncated")
case("unclosed-think-stop", "truncated", "spot_single", "diff",
     "<think>\nLet me reconsider the guard. If ticks_needed equals ticks_left we still have "
     "exactly enough time, so the guard is tight. Maybe:\n" + _sr(MARGIN_OLD, MARGIN_NEW) + "\n",
     reject="truncated", says="inside its reasoning")

case("length-after-closed-fence", "truncated", "circle_packing", "full",
     "```python\n" + CP_ROUNDS + "```\n\n### Why this helps\n\n1. The relaxation loop",
     finish=("length",), reject="truncated")
case("think-then-unclosed-fence", "truncated", "spot_single", "full",
     "<think>\nRewrite with an outage counter.\n</think>\n\n```python\n" + SS_HYST[:-200],
     reject="truncated", says="never closed")
case("refusal-snippet-full", "refusal-snippet", "circle_packing", "full",
     "I can't promise a better packing without running the evaluator, so I'd rather not "
     "rewrite the whole program. One thing you could try is more relaxation rounds:\n\n"
     "```python\n" + ROUNDS_NEW + "\n    ...\n```\n",
     reject="incomplete-block", says="pack_circles")
case("refusal-snippet-crossover", "refusal-snippet", "circle_packing", "crossover",
     "Combining these two parents cleanly is hard. I'd just take B's layout function:\n\n"
     "```python\n" + GRID_NEW.split("\n\n\n")[1] + "\n```\n",
     reject="incomplete-block", says="pack_circles")
case("refusal-snippet-spot", "refusal-snippet", "spot_single", "full",
     "I'm not able to verify a full rewrite. A minimal idea:\n\n```python\n" + SPOT_NEW
     + "\n```\n",
     reject="incomplete-block", says="Policy")
case("entry-function-alone", "refusal-snippet", "circle_packing", "full",
     "The only function that needs to change is `pack_circles`: sort by distance from the centre "
     "before growing radii.\n\n```python\ndef pack_circles(n: int = 26) -> list[tuple[float, "
     "float, float]]:\n    centres = sorted(layout(n), key=lambda c: (c[0] - 0.5) ** 2 + (c[1] "
     "- 0.5) ** 2)\n    radii = max_radii(centres)\n    return [(x, y, r) for (x, y), r in "
     "zip(centres, radii, strict=True)]\n```\n",
     reject="incomplete-block", says="layout, max_radii")
INIT_NEW = """    def __init__(self, scenario):
        self.gap = scenario.gap_s
        self.overhead = scenario.restart_overhead_s
        self.outage_ticks = 0
"""
case("elided-init", "elided", "spot_single", "full",
     "Only `decide` changes; the rest of the class stays as it is.\n\n```python\n"
     + _change(SS_HYST, (INIT_NEW, "    # ... __init__ same as before, plus self.outage_ticks = 0\n"))
     + "```\n",
     reject="elided-code", says="same as before")
case("elided-rest-of-function", "elided", "circle_packing", "diff",
     "Allow more rounds; the loop body stays.\n\n"
     + _sr(ROUNDS_OLD + '\n    """Largest radii for fixed centres: start at the wall distance, '
           'shrink overlapping pairs."""\n    radii = [min(x, y, 1 - x, 1 - y) for x, y in '
           "centres]\n    for _ in range(rounds):\n        changed = False\n"
           "        for i in range(len(centres)):",
           ROUNDS_NEW + "\n    # ... (rest of the function unchanged)"),
     reject="elided-code", says="rest of the function")
case("elided-ellipsis-body", "elided", "spot_single", "full",
     "```python\n" + _change(SS_HYST, ("        if state.work_left_s <= 0:\n            return "
                                       "NONE\n        ticks_left", "        ...\n        "
                                                                   "ticks_left")) + "```\n",
     reject="elided-code")
case("refusal-json-fragment", "refusal-snippet", "circle_packing", "full",
     json.dumps({"code": "def max_radii(centres, rounds=200):\n    ...\n"}),
     reject="incomplete-block")

case("refusal-prose-full", "refusal-prose", "spot_single", "full",
     "I'm sorry, but I can't help with rewriting this scheduling policy.",
     reject="no-code")
case("refusal-prose-diff", "refusal-prose", "circle_packing", "diff",
     "The current program already looks close to optimal for this layout; I don't see a "
     "change I am confident would improve the score.",
     reject="diff-format")
case("drafts-only-in-think", "refusal-prose", "circle_packing", "diff",
     "<think>\nMaybe:\n" + _sr(PHASE_OLD, PHASE_NEW) + "\nNo, the evaluator is exact; "
     "rotating may create overlaps with the walls.\n</think>\n\nI could not find a safe "
     "improvement this time.",
     reject="diff-format")

case("refusal-prose-crossover", "refusal-prose", "spot_single", "crossover",
     "Both parents implement the same greedy idea, so there is nothing meaningful to combine. "
     "I suggest running a different mutation instead.",
     reject="no-code")
case("edit-outside-import", "outside-block", "circle_packing", "full",
     "```python\n" + _change(CP_ROUNDS, ("import math\n", "import math\nimport random\n"))
     + "```\n",
     reject="outside-evolve-block", says="import random")
case("unified-diff-docstring", "outside-block", "spot_single", "diff",
     "```diff\n@@ -1,3 +1,3 @@\n-\"\"\"Spot scheduling under a deadline, one region (\"Can't Be "
     "Late\", NSDI '24).\n+\"\"\"Spot scheduling under a deadline, one region.\n \n```\n",
     reject="outside-evolve-block")
case("extra-start-marker", "outside-block", "circle_packing", "full",
     "```python\n" + _change(CP_ROUNDS, ("def pack_circles", "# EVOLVE-BLOCK-START\n"
                                         "def pack_circles")) + "```\n",
     reject="outside-evolve-block", says="2 START and 1 END")

case("unchanged-program", "no-change", "spot_single", "full",
     "The current policy is already optimal for this scenario, so I return it unchanged:\n\n"
     "```python\n" + SS + "```\n",
     reject="no-change")
case("two-alternatives", "two-programs", "circle_packing", "full",
     "Option A, more rounds:\n\n```python\n" + CP_ROUNDS + "```\n\nOption B, a staggered "
     "grid:\n\n```python\n" + CP_GRID + "```\n\nTry both and keep the better one.",
     reject="ambiguous-reply")
case("hallucinated-search", "bad-edit", "circle_packing", "diff",
     _sr("    radii = np.zeros(n)", "    radii = np.full(n, 0.1)"),
     reject="diff-no-match")
case("ambiguous-search", "bad-edit", "spot_single", "diff",
     _sr("return NONE", "return SPOT"),
     reject="diff-ambiguous")
case("block-without-divider", "bad-edit", "circle_packing", "diff",
     "<<<<<<< SEARCH\n" + PHASE_OLD + "\n>>>>>>> REPLACE\n\n" + _sr(INNER_OLD, INNER_NEW),
     reject="diff-format", says="no '=======' line")
case("hunk-without-context", "bad-edit", "spot_single", "diff",
     "```diff\n@@ -40,0 +41,2 @@\n+        if state.preempted:\n+            return ON_DEMAND\n```",
     reject="diff-format")
case("tabs-full-refused-edit", "outside-block", "spot_single", "full",
     "```python\n" + _tabs(_change(SS_SPOT, ("NONE, SPOT, ON_DEMAND = 0, 1, 2",
                                               "NONE, SPOT, ON_DEMAND = 0, 1, 3"))) + "```\n",
     reject="outside-evolve-block", says="ON_DEMAND = 0, 1, 3")
