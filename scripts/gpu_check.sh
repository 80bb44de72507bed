#!/usr/bin/env bash
# The GPU paths in one command, on one CUDA GPU, within 8 minutes (an H100 needs far less):
#   1. eplb's kernel stage at DeepSeek-V3 expert size in bf16 (hidden 7168, intermediate 2048,
#      8192 tokens top-8, grouped GEMMs timed with CUDA events), for DeepSeek's EPLB and the
#      round-robin layout;
#   2. moe_lbl's GPU configuration (problems/moe_lbl/trainer.py CONFIGS["gpu"]): the initial
#      program, the global-batch baseline and no balancing, one seed each, full stage, trained
#      side by side on the one GPU (the model is small; three processes keep it busier).
# It prints their figures. Without a CUDA GPU it runs nothing and exits 3 with one line saying so.
#
#   scripts/gpu_check.sh            # PYTHON picks the interpreter (default: .venv/bin/python)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PYTHON" -c "import torch" 2>/dev/null; then
    echo "gpu_check: FAILED: torch cannot be imported by $PYTHON (bash scripts/setup.sh --dev installs it)" >&2
    exit 3
fi
if ! "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: FAILED: no CUDA GPU is visible to torch (CUDA_VISIBLE_DEVICES='${CUDA_VISIBLE_DEVICES-unset}'); nothing was run" >&2
    exit 3
fi

started=$SECONDS
failed=0
# Each part has its own time limit (together 8 minutes); a part that fails or runs out of time
# is named, and the other still runs.
echo "== eplb kernel stage on $("$PYTHON" -c "import torch; print(torch.cuda.get_device_name())")"
timeout 180 "$PYTHON" scripts/gpu_check_eplb.py || {
    echo "gpu_check: FAILED: eplb kernel stage (exit $?; 124 = over its 180 s)"; failed=1; }
echo "== moe_lbl, GPU configuration: step time"
timeout 60 "$PYTHON" scripts/gpu_check_moe_speed.py || {
    echo "gpu_check: FAILED: moe_lbl step timing (exit $?; 124 = over its 60 s)"; failed=1; }
echo "== moe_lbl, GPU configuration (full stage, seed 0)"
timeout 240 "$PYTHON" -m problems.moe_lbl.run_baselines --config gpu --stage full --seeds 0 \
    --only initial global_batch no_balancing --reference global_batch --jobs 3 || {
    echo "gpu_check: FAILED: moe_lbl GPU configuration (exit $?; 124 = over its 240 s)"; failed=1; }
echo "gpu_check: done in $((SECONDS - started)) s"
exit "$failed"
