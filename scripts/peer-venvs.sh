#!/usr/bin/env bash
# Build isolated virtualenvs for the peer servers the benchmark compares against.
#
# Why separate venvs: seldon-core and kserve pin old or conflicting versions of
# numpy, flask, fastapi, protobuf, grpcio ...; installing them into the project
# venv (.venv) would change what infergraph itself is tested and measured with.
#
# Usage: scripts/peer-venvs.sh [kserve|seldon|wrk|all]   (default: all)
# Idempotent: each venv gets a stamp file recording what was installed; delete
# the venv (or the stamp) to rebuild it.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
PIP_FLAGS=(-q --disable-pip-version-check)

# Pins are kept here so a re-run reproduces the same peers. Bump deliberately.
KSERVE_REQS=("kserve==0.21.0" "scikit-learn")
# seldon-core 1.18.2 is the newest release on PyPI (there is no 1.19 there); it
# installs on Python 3.11 as is (numpy 1.26, flask 2.2, gunicorn 20.1, protobuf 3.20).
# Its gunicorn 20.1 imports pkg_resources at import time, which setuptools >= 81 no
# longer ships: the venv's bundled setuptools would do, but the pin keeps a later
# upgrade from breaking it.
SELDON_REQS=("seldon-core==1.18.2" "scikit-learn" "setuptools<81")

log() { printf '[peer-venvs] %s\n' "$*" >&2; }

need_python() {
    command -v "$PYTHON" >/dev/null 2>&1 || {
        log "error: $PYTHON not found; set PYTHON=/path/to/python3.11"
        exit 2
    }
}

# make_venv DIR PKG... : create DIR with PKG installed unless its stamp matches.
make_venv() {
    local dir="$1"
    shift
    local stamp="$dir/.peer-installed"
    local want="$*"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        log "$dir: already installed ($want)"
        return 0
    fi
    need_python
    log "$dir: installing $want"
    [[ -x "$dir/bin/python" ]] || "$PYTHON" -m venv "$dir"
    "$dir/bin/pip" install "${PIP_FLAGS[@]}" --upgrade pip
    "$dir/bin/pip" install "${PIP_FLAGS[@]}" "$@"
    printf '%s' "$want" >"$stamp"
}

show_versions() {
    local dir="$1"
    shift
    [[ -x "$dir/bin/python" ]] || return 0
    "$dir/bin/python" - "$@" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version

for name in sys.argv[1:]:
    try:
        print(f"  {name}=={version(name)}")
    except PackageNotFoundError:
        print(f"  {name}: not installed")
PY
}

install_wrk() {
    if command -v wrk >/dev/null 2>&1; then
        log "wrk: already installed"
        return 0
    fi
    log "wrk: installing with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q wrk >/dev/null || {
        apt-get update -q >/dev/null
        apt-get install -y -q wrk >/dev/null
    }
}

do_kserve() { make_venv .venv-kserve "${KSERVE_REQS[@]}"; }
do_seldon() { make_venv .venv-seldon "${SELDON_REQS[@]}"; }

target="${1:-all}"
case "$target" in
kserve) do_kserve ;;
seldon) do_seldon ;;
wrk) install_wrk ;;
all)
    install_wrk
    do_kserve
    do_seldon
    ;;
*)
    log "usage: $0 [kserve|seldon|wrk|all]"
    exit 2
    ;;
esac

echo "peer versions:"
show_versions .venv-kserve kserve fastapi uvicorn scikit-learn numpy
show_versions .venv-seldon seldon-core flask gunicorn scikit-learn numpy setuptools
command -v wrk >/dev/null 2>&1 && echo "  $(wrk --version 2>&1 | head -1)"
exit 0
