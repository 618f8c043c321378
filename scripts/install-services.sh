#!/usr/bin/env bash
# Install the external services that the test suite runs for real (convention 9: real
# Redis at the seams, no mocks). Today that is only `redis-server`, used by the bandit
# state store tests (tests/test_bandit_redis.py).
#
# Idempotent: a service already on PATH is left alone. Debian/Ubuntu only (apt-get);
# run as root, or with sudo available.
#
# Usage: scripts/install-services.sh
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo --preserve-env=DEBIAN_FRONTEND "$@"
    else
        echo "install-services.sh: need root (or sudo) to run: $*" >&2
        exit 1
    fi
}

apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install-services.sh: apt-get not found; install these by hand: $*" >&2
        exit 1
    fi
    # The package lists may be absent (fresh container) or stale: update once, then install.
    if ! as_root apt-get install -y --no-install-recommends "$@"; then
        as_root apt-get update
        as_root apt-get install -y --no-install-recommends "$@"
    fi
}

if command -v redis-server >/dev/null 2>&1; then
    echo "redis-server already installed: $(redis-server --version)"
else
    apt_install redis-server
    # The tests start their own server on a free port; a system-wide one the package may
    # have started on 6379 is neither needed nor touched.
    echo "installed: $(redis-server --version)"
fi
