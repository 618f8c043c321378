#!/usr/bin/env bash
# Build .venv-lowest: infergraph with every extra, each of its direct dependencies at the
# lowest version pyproject.toml allows (uv's --resolution lowest-direct), then the test
# tools on top without moving any of those. `make test-lowest` runs the suite in it; the
# newest set is .venv itself, which pip resolves to the newest releases.
#
# Idempotent: rebuilt only when pyproject.toml changes (the stamp holds its hash).
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=.venv-lowest
UV=.venv/bin/uv
PYTHON="${PYTHON:-python3.11}"
log() { printf '[lowest] %s\n' "$*" >&2; }

want="$(sha256sum pyproject.toml | cut -c1-16)"
if [[ -f "$DIR/.lowest-installed" && "$(cat "$DIR/.lowest-installed")" == "$want" ]]; then
    log "$DIR: up to date"
    exit 0
fi
[[ -x "$UV" ]] || { log "error: $UV missing; run make venv first"; exit 2; }
rm -rf "$DIR"
log "$DIR: creating, with every direct dependency at its lowest allowed version"
"$UV" venv -q -p "$PYTHON" "$DIR"
"$UV" pip install -q -p "$DIR/bin/python" --resolution lowest-direct -e '.[all]'
"$UV" pip freeze -p "$DIR/bin/python" | grep -v '^-e \|^infergraph' >"$DIR/lowest.txt"
log "$DIR: adding the test tools, with those versions held"
"$UV" pip install -q -p "$DIR/bin/python" --group test -c "$DIR/lowest.txt"
log "$DIR: the lowest set:"
grep -iE '^(numpy|protobuf|grpcio|grpcio-reflection|pydantic|orjson|uvicorn|httptools|uvloop|httpx|hpack|pyyaml|scikit-learn|pandas)==' "$DIR/lowest.txt" | sed 's/^/  /' >&2
printf '%s' "$want" >"$DIR/.lowest-installed"
