#!/bin/sh
# Run a command as on a machine without bubblewrap, without uninstalling it: in a private mount
# namespace every bwrap on PATH is bind-mounted over with /bin/false, so the sandbox's probe
# fails and it falls back to `unshare` (or `rlimits`). Needs root (or CAP_SYS_ADMIN).
# Example: scripts/without_bwrap.sh .venv/bin/python -m pytest tests/hostile -x -q
set -eu
[ "$#" -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
exec unshare -m --propagation private sh -c '
  for b in $(which -a bwrap 2>/dev/null); do mount --bind /bin/false "$b"; done
  exec "$@"' sh "$@"
