#!/bin/bash
# The docs/scale-out.md walkthrough: two Ray nodes on one machine, each from its own virtual
# environment (a regular install of this checkout) and working directory, token authentication
# on, a problem checked and a run driven from node A. Ends only the Ray processes it started.
#   bash scripts/scale_out_walkthrough.sh [WORK_DIR]      (default /tmp/evolve-walk)
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
W=${1:-/tmp/evolve-walk}
PORT=${PORT:-6391}
RAY_TMP=/tmp/rw-walk-$$          # short: Ray's socket paths must fit in 107 bytes
PY=${PYTHON:-python3.11}
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$W/auth_token RAY_USAGE_STATS_ENABLED=0
step() { echo; echo "\$ $*"; "$@"; echo "[exit $?]"; }

mkdir -p "$W"
for node in nodeA nodeB; do
    if [ ! -x "$W/$node/venv/bin/evolve" ]; then
        mkdir -p "$W/$node" && "$PY" -m venv "$W/$node/venv" &&
            "$W/$node/venv/bin/python" -m pip install -q "$REPO[ray,postgres]" || exit 1
    fi
done
[ -s "$W/auth_token" ] || "$PY" -c "import secrets; print(secrets.token_hex(32))" > "$W/auth_token"
chmod 600 "$W/auth_token"

stop_ours() {  # the processes naming this walkthrough's Ray folder, by pid
    "$W/nodeA/venv/bin/python" - "$RAY_TMP" <<'PY'
import os, sys, psutil
marker = sys.argv[1]
roots = [p for p in psutil.process_iter(["cmdline"]) if p.pid != os.getpid()
         and any(marker in a for a in p.info["cmdline"] or ())]
procs = {p.pid: p for p in roots}
for p in roots:
    try:
        procs.update({c.pid: c for c in p.children(recursive=True)})
    except psutil.NoSuchProcess:
        pass
for p in procs.values():
    try:
        p.terminate()
    except psutil.NoSuchProcess:
        pass
_, alive = psutil.wait_procs(list(procs.values()), timeout=5)
for p in alive:
    p.kill()
PY
    rm -rf "$RAY_TMP"
}
trap stop_ours EXIT

cd "$W/nodeA"
step venv/bin/ray start --head --port=$PORT --node-ip-address=127.0.0.1 --num-cpus=1 \
     --include-dashboard=false --temp-dir=$RAY_TMP --disable-usage-stats
cd "$W/nodeB"
step venv/bin/ray start --address=127.0.0.1:$PORT --node-ip-address=127.0.0.1 --num-cpus=1 \
     --temp-dir=$RAY_TMP --disable-usage-stats
cd "$W/nodeA"
step venv/bin/evolve doctor --executor ray --ray-address 127.0.0.1:$PORT --ollama-url 127.0.0.1:9
step venv/bin/evolve problems check spot_single --ray-address 127.0.0.1:$PORT
step venv/bin/evolve run circle_packing --executor ray --ray-address 127.0.0.1:$PORT \
     --programs 4 --run-dir "$W/nodeA/runs/cp" --no-live
step venv/bin/evolve status "$W/nodeA/runs/cp"
