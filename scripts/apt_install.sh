#!/usr/bin/env bash
# Install Debian packages with apt-get, waiting (bounded) while another apt process holds the
# lock — on a fresh machine unattended-upgrades often does for the first minutes.
#   bash scripts/apt_install.sh PACKAGE...
# Exit 0 when installed; 1 when apt-get failed or the lock stayed held for
# EVOLVE_APT_LOCK_WAIT_S seconds (default 600). Needs root and apt-get (the caller checks).
set -uo pipefail

WAIT_S="${EVOLVE_APT_LOCK_WAIT_S:-600}"
POLL_S="${EVOLVE_APT_LOCK_POLL_S:-5}"
export DEBIAN_FRONTEND=noninteractive

say() { echo "setup: $*"; }

# One deadline for the whole script: the bound is on the total wait.
DEADLINE=$(( $(date +%s) + WAIT_S ))
SAID=""

# One apt-get call, retried while the failure is the lock (apt's own DPkg::Lock::Timeout covers
# the dpkg lock; the loop also covers the lists lock of `apt-get update`). Returns 2 when the
# lock outlasted the bound.
apt_get() {
    local out
    while :; do
        if out="$(timeout 600 apt-get -o DPkg::Lock::Timeout="$POLL_S" "$@" 2>&1)"; then
            return 0
        fi
        if ! grep -qiE "could not get lock|unable to acquire the dpkg|is another process using it" <<<"$out"; then
            printf '%s\n' "$out" | tail -n 3 | sed 's/^/setup:   apt-get: /'
            return 1
        fi
        if [ "$(date +%s)" -ge "$DEADLINE" ]; then
            say "apt is still locked by another process after ${WAIT_S}s; giving up"
            return 2
        fi
        if [ -z "$SAID" ]; then
            say "another apt process holds the lock; waiting for it (up to ${WAIT_S}s)"
            SAID="yes"
        fi
        sleep "$POLL_S"
    done
}

apt_get install -y -qq "$@"
case $? in
    0) exit 0 ;;
    2) exit 1 ;;                     # still locked: an update would wait again
esac
apt_get update -qq && apt_get install -y -qq "$@" || exit 1
