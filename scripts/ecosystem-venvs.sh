#!/usr/bin/env bash
# Build the environments where infergraph shares one process with the libraries our users
# already have (tests/ecosystem/ runs in them):
#   .venv-eco-tf        infergraph[all] + tritonclient[all] + kserve + tensorflow-cpu
#   .venv-eco-mlserver  infergraph[all] + mlserver
#   .venv-eco-seldon    infergraph[sklearn] + seldon-core installed with --no-deps (its pins,
#                       protobuf<4 and numpy<2 among them, cannot be met beside a current
#                       stack), for SeldonClient next to infergraph.testing
# Each must install without conflicts (`pip check` is clean): these libraries register
# `inference.*`, `tensorflow.*` and `seldon.protos.*` in protobuf's default descriptor pool,
# and need protobuf < 7; infergraph keeps its descriptors in a pool of its own.
#
# Usage: scripts/ecosystem-venvs.sh [tf|mlserver|seldon|all]   (default: all)
# Idempotent: a venv is rebuilt only when what it should hold, or pyproject.toml, changes.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
UV=.venv/bin/uv
TF_REQS=("tritonclient[all]" "kserve" "tensorflow-cpu")
MLSERVER_REQS=("mlserver==1.7.1")
# what seldon_core.seldon_client imports, beside seldon-core itself
SELDON_REQS=("flask" "requests" "prometheus_client")
SELDON_CORE="seldon-core==1.18.2"
log() { printf '[ecosystem] %s\n' "$*" >&2; }

# make_venv DIR EXTRAS PKG... : DIR holds infergraph[EXTRAS] and PKG..., resolved together.
make_venv() {
    local dir="$1" extras="$2"
    shift 2
    local stamp="$dir/.eco-installed"
    local want
    want="$extras $* $(sha256sum pyproject.toml | cut -c1-16)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        log "$dir: up to date ($*)"
        return 0
    fi
    [[ -x "$UV" ]] || { log "error: $UV missing; run make venv first"; exit 2; }
    log "$dir: installing infergraph[$extras] $* (resolved together, first time a few minutes)"
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    "$UV" pip install -q -p "$dir/bin/python" -e ".[$extras]" "$@"
    if [[ "$dir" == *seldon ]]; then
        "$UV" pip install -q -p "$dir/bin/python" --no-deps "$SELDON_CORE"
    else
        log "$dir: pip check"
        "$dir/bin/python" -m pip check
    fi
    "$dir/bin/python" - <<'PY' >&2
from importlib.metadata import version
names = ["infergraph", "protobuf", "grpcio", "numpy", "tensorflow-cpu", "kserve",
         "tritonclient", "mlserver", "seldon-core"]
found = []
for name in names:
    try:
        found.append(f"{name}=={version(name)}")
    except Exception:
        pass
print("  " + " ".join(found))
PY
    printf '%s' "$want" >"$stamp"
}

target="${1:-all}"
case "$target" in
tf) make_venv .venv-eco-tf all "${TF_REQS[@]}" ;;
mlserver) make_venv .venv-eco-mlserver all "${MLSERVER_REQS[@]}" ;;
seldon) make_venv .venv-eco-seldon sklearn "${SELDON_REQS[@]}" ;;
all)
    make_venv .venv-eco-tf all "${TF_REQS[@]}"
    make_venv .venv-eco-mlserver all "${MLSERVER_REQS[@]}"
    make_venv .venv-eco-seldon sklearn "${SELDON_REQS[@]}"
    ;;
*)
    log "usage: $0 [tf|mlserver|seldon|all]"
    exit 2
    ;;
esac
