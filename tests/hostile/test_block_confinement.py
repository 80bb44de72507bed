"""The EVOLVE-BLOCK promise under the lenient reply reading of issue 26: however a reply is
shaped (no markers, no header, a fake marker, a unified diff, JSON, CRLF tricks), the code
outside the parent's block is never changed. Each attack is rejected, or its child keeps
the parent's frame exactly (the strict check passes)."""

from __future__ import annotations

import json

import pytest

from evolve.patch.mutation import MutationError, check_evolve_blocks, child_from_reply
from tests.engine.reply_corpus import SS, SS_SPOT

FRAME_LINE = "NONE, SPOT, ON_DEMAND = 0, 1, 2"
EVIL = "NONE, SPOT, ON_DEMAND = 2, 2, 2"  # every decision becomes on-demand

ATTACKS = {
    "marked-program-edits-the-frame": f"```python\n{SS_SPOT.replace(FRAME_LINE, EVIL)}```",
    "header-less-block-with-trailing-frame-code":
        "```python\n" + SS_SPOT[SS_SPOT.index("# EVOLVE-BLOCK-START"):] + EVIL + "\n```",
    "body-with-fake-end-marker":
        "```python\n" + SS_SPOT[SS_SPOT.index("class Policy"):SS_SPOT.index("# EVOLVE-BLOCK-END")]
        + "# EVOLVE-BLOCK-END\nimport os\nos.environ['X'] = '1'\n# EVOLVE-BLOCK-START\n```",
    "unified-diff-on-the-frame":
        f"```diff\n@@ -17,1 +17,1 @@\n-{FRAME_LINE}\n+{EVIL}\n```",
    "search-replace-on-the-frame":
        f"<<<<<<< SEARCH\n{FRAME_LINE}\n=======\n{EVIL}\n>>>>>>> REPLACE",
    "json-program-edits-the-frame": json.dumps({"code": SS_SPOT.replace(FRAME_LINE, EVIL)}),
    "lone-carriage-return-hides-a-line":
        "```python\n" + SS_SPOT.replace(FRAME_LINE, FRAME_LINE + "\r" + EVIL) + "```",
    "marker-in-a-string": "```python\n" + SS_SPOT.replace(
        "class Policy:", "TAG = '# EVOLVE-BLOCK-END'\n\n\nclass Policy:") + "```",
    "unmarked-program-changes-the-frame":
        "```python\n" + SS_SPOT.replace("# EVOLVE-BLOCK-START\n", "").replace(
            "# EVOLVE-BLOCK-END\n", "").replace(FRAME_LINE, EVIL) + "```",
}


@pytest.mark.parametrize("name", ATTACKS)
@pytest.mark.parametrize("kind", ["diff", "full", "crossover"])
def test_no_reply_changes_the_code_outside_the_block(name, kind):
    try:
        child = child_from_reply(kind, SS, ATTACKS[name], 40_000, entry="Policy")
    except MutationError:
        return  # refused: nothing changes
    check_evolve_blocks(SS, child)  # the frame is the parent's, byte for byte
    frame_end = SS.index("# EVOLVE-BLOCK-START")
    assert child[:frame_end] == SS[:frame_end]
