#!/usr/bin/env bash
# Drive `evolve dashboard` in a real terminal (tmux, 80x24) on a finished run: send keys,
# capture the pane after each, and fail if the expected text is missing.
#
#   scripts/tmux_check.sh RUN_DIR        # check an existing run folder
#   scripts/tmux_check.sh                # first a short `evolve run` into a temp folder
#
# PYTHON picks the interpreter (default: .venv/bin/python of the checkout, else python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
command -v tmux >/dev/null || { echo "tmux_check: tmux is not installed (apt-get install tmux)" >&2; exit 2; }

WORK="$(mktemp -d)"
SESSION="evolve-check-$$"
cleanup() { tmux kill-session -t "$SESSION" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

RUN_DIR="${1:-}"
if [[ -z "$RUN_DIR" ]]; then
    RUN_DIR="$WORK/run"
    echo "tmux_check: a short evolve run (toy problem, scripted LLM server) into $RUN_DIR"
    PYTHONPATH="$ROOT" "$PYTHON" -c "
from pathlib import Path
from tests.support.engine_run import engine_run
engine_run(Path('$RUN_DIR'))"
fi
RUN_DIR="$(cd "$RUN_DIR" && pwd)"

# What the run holds, to know what the screens must show.
BEST_JSON="$(PYTHONPATH="$ROOT" "$PYTHON" -m evolve best "$RUN_DIR" --json)"
read -r BEST_ID PROGRAMS FAILED CODE_LINE < <(PYTHONPATH="$ROOT" "$PYTHON" -c "
import json, sys
best = json.loads(sys.argv[1])
status = json.loads(sys.argv[2])
line = next(l.strip() for l in best['code'].splitlines() if l.strip().startswith('def '))
print(best['id'], status['programs'], sum(status['failures'].values()), line)" "$BEST_JSON" \
    "$(PYTHONPATH="$ROOT" "$PYTHON" -m evolve status "$RUN_DIR" --json)")

capture() { tmux capture-pane -p -t "$SESSION"; }

expect() {  # expect TEXT [SECONDS] [GREP_MODE]: wait until the pane shows TEXT
    local text="$1" deadline=$((SECONDS + ${2:-20})) mode="${3:--F}"
    while (( SECONDS < deadline )); do
        if capture 2>/dev/null | grep -q "$mode" -- "$text"; then
            echo "ok: '$text'"
            return 0
        fi
        sleep 0.3
    done
    echo "tmux_check: FAILED, the pane never showed '$text'. Last pane:" >&2
    capture >&2 || true
    exit 1
}

press() { tmux send-keys -t "$SESSION" "$@"; sleep 0.4; }

tmux new-session -d -s "$SESSION" -x 80 -y 24 \
    "cd '$ROOT' && PYTHONPATH='$ROOT' TERM=xterm-256color '$PYTHON' -m evolve dashboard '$RUN_DIR'; sleep 30"
expect "$PROGRAMS of $PROGRAMS programs" 60
expect "Quit"
expect "Overview"

press o
expect "best score over programs"
expect "arms (operator"

press t
press /                          # focus moves on the next refresh: send the words after it
press "f" "a" "i" "l" "e" "d"
expect "$FAILED of $PROGRAMS programs"
press BSpace BSpace BSpace BSpace BSpace BSpace Enter
expect "$PROGRAMS of $PROGRAMS programs"

press g                          # top row: the table is sorted best first
press Enter                      # open the best program
expect "#$BEST_ID "
expect "Summary"
press c
expect "$CODE_LINE"
press d
expect '@@|no parent' 20 -E
press l
expect "#$BEST_ID "
press p
expect '\[system\]|No LLM call' 20 -E
press End                        # the prompt view has focus: scroll to the model's reply
expect '\[reply\]|No LLM call' 20 -E
press Escape
expect "$PROGRAMS of $PROGRAMS programs"
press q

for _ in $(seq 1 30); do          # q quits: the dashboard process ends, the pane is left idle
    if ! tmux list-panes -t "$SESSION" -F '#{pane_current_command}' 2>/dev/null \
        | grep -q python; then
        echo "tmux_check: all screens showed what they should; q quit the dashboard"
        exit 0
    fi
    sleep 0.3
done
echo "tmux_check: FAILED, q did not quit the dashboard" >&2
capture >&2
exit 1
