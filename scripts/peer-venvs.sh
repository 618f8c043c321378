#!/usr/bin/env bash
# Build isolated virtualenvs for the peer servers the benchmark compares against.
#
# Why separate venvs: seldon-core and kserve pin old or conflicting versions of
# numpy, flask, fastapi, protobuf, grpcio ...; installing them into the project
# venv (.venv) would change what infergraph itself is tested and measured with.
#
# Usage: scripts/peer-venvs.sh [kserve|seldon|mlserver|wrk|h2load|all]   (default: all)
# Idempotent: each venv gets a stamp file recording what was installed; delete
# the venv (or the stamp) to rebuild it.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
PIP_FLAGS=(-q --disable-pip-version-check)

# Pins are kept here so a re-run reproduces the same peers. Bump deliberately.
# tritonclient[grpc] is here, not in .venv, because it pins protobuf<7 and .venv holds the
# newest protobuf (infergraph takes any from 4.21.6 on); kserve 0.21 pins protobuf 6, so
# both resolve together.
# tests/interop/test_v2_clients.py and tests/protocol/test_v2_datatypes.py run V2 clients from it.
KSERVE_REQS=("kserve==0.21.0" "scikit-learn" "tritonclient[grpc]")
# seldon-core 1.18.2 is the newest release on PyPI (there is no 1.19 there); it
# installs on Python 3.11 as is (numpy 1.26, flask 2.2, gunicorn 20.1, protobuf 3.20).
# Its gunicorn 20.1 imports pkg_resources at import time, which setuptools >= 81 no
# longer ships: the venv's bundled setuptools would do, but the pin keeps a later
# upgrade from breaking it.
SELDON_REQS=("seldon-core==1.18.2" "scikit-learn" "setuptools<81")
# MLServer (Seldon's V2 / Open Inference Protocol server) and its scikit-learn runtime,
# for bench/v2.py. 1.7.1 is the newest release of both on PyPI; they are released together.
MLSERVER_REQS=("mlserver==1.7.1" "mlserver-sklearn==1.7.1")

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

# apt_tool COMMAND PACKAGE : install the Debian PACKAGE that provides COMMAND, if missing.
apt_tool() {
    local cmd="$1" pkg="$2"
    if command -v "$cmd" >/dev/null 2>&1; then
        log "$cmd: already installed"
        return 0
    fi
    log "$cmd: installing $pkg with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "$pkg" >/dev/null || {
        apt-get update -q >/dev/null
        apt-get install -y -q "$pkg" >/dev/null
    }
}

install_wrk() { apt_tool wrk wrk; }
# h2load (HTTP/2 load generator) drives the gRPC runs of bench/v2.py.
install_h2load() { apt_tool h2load nghttp2-client; }

do_kserve() { make_venv .venv-kserve "${KSERVE_REQS[@]}"; }
do_seldon() { make_venv .venv-seldon "${SELDON_REQS[@]}"; }
do_mlserver() { make_venv .venv-mlserver "${MLSERVER_REQS[@]}"; }

target="${1:-all}"
case "$target" in
kserve) do_kserve ;;
seldon) do_seldon ;;
mlserver) do_mlserver ;;
wrk) install_wrk ;;
h2load) install_h2load ;;
all)
    install_wrk
    install_h2load
    do_kserve
    do_seldon
    do_mlserver
    ;;
*)
    log "usage: $0 [kserve|seldon|mlserver|wrk|h2load|all]"
    exit 2
    ;;
esac

echo "peer versions:"
show_versions .venv-kserve kserve fastapi uvicorn scikit-learn numpy tritonclient protobuf
show_versions .venv-seldon seldon-core flask gunicorn scikit-learn numpy setuptools
show_versions .venv-mlserver mlserver mlserver-sklearn fastapi uvicorn grpcio scikit-learn numpy
command -v wrk >/dev/null 2>&1 && echo "  $(wrk --version 2>&1 | head -1)"
command -v h2load >/dev/null 2>&1 && echo "  $(h2load --version 2>&1 | head -1)"
exit 0
