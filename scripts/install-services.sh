#!/usr/bin/env bash
# Install the external services and tools that the test suite runs for real (convention 9:
# real components at the seams, no mocks):
#   redis-server                the bandit and feedback-id stores (tests/*/test_*redis*.py)
#   podman, runc, debootstrap   the runtime image and a rendered pod run for real
#   catatonit                   (scripts/build-runtime-image.sh, tests/kube/test_podman_pod.py);
#                               catatonit is the pod's pause process, which podman only
#                               recommends, so --no-install-recommends leaves it out
#   npm                         the KEDA / Istio / Gateway API schema models
#                               (tests/kube/test_kube_render_schemas.py)
#   prometheus                  scrapes `infergraph serve` and answers the queries of
#                               deploy/grafana/infergraph.json (tests/observability/test_prometheus.py)
#   chromium, chromium-driver   headless Chromium, driven by selenium, reads the live
#                               dashboard's page (tests/runtime/test_dashboard.py)
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

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v catatonit >/dev/null 2>&1 || need+=(catatonit)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -eq 0 ]; then
    echo "services: redis-server, podman, runc, catatonit, debootstrap, npm, prometheus, chromium and chromium-driver already installed"
else
    echo "services: installing ${need[*]} with apt-get (system-wide)"
    apt_install "${need[@]}"
fi
# The tests start their own redis-server and prometheus on free ports; system-wide ones the
# packages may have started (6379, 9090) are neither needed nor touched.
echo "  $(redis-server --version | cut -d' ' -f1-3)"
echo "  $(podman --version)"
echo "  $(prometheus --version 2>&1 | head -n 1)"
echo "  $(chromium --version 2>/dev/null | head -n 1)"
