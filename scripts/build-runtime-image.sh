#!/usr/bin/env bash
# Build the infergraph runtime image (the Dockerfile's layout) where no image registry can
# be reached: a Debian bookworm root file system from debootstrap with a venv at
# /opt/infergraph holding every dependency of infergraph[extras], from wheels made on this
# host (`tar | podman import`: the dependency layer), then infergraph's own wheel installed
# on top (`podman build`, no network). Every slow step is cached under
# $INFERGRAPH_IMAGE_CACHE (default ~/.cache/infergraph/image): a run with nothing changed
# takes a second, and a source change rebuilds only the top layer.
#
#   bash scripts/build-runtime-image.sh [IMAGE]     # default localhost/infergraph:<version>
#
# Needs: root (debootstrap and chroot), debootstrap, podman, tar, and Python 3.11 with pip
# on the host (network access to Debian's mirror and PyPI on the first run only).
# Environment: INFERGRAPH_EXTRAS (default all), INFERGRAPH_IMAGE_CACHE, DEBIAN_MIRROR,
# PYTHON (a host Python with pip 22.3 or later, which runs pip) and TARGET_PYTHON (a host
# Python of exactly the root file system's version, e.g. Debian's /usr/bin/python3: pip
# resolves under it, so that markers like python_full_version < "3.11.3" pick the wheels
# the image's Python needs). Progress goes to stderr; the image's name is the one line on
# stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPT="$ROOT/scripts/build-runtime-image.sh"
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$ROOT/src/infergraph/_version.py")
IMAGE=${1:-localhost/infergraph:$VERSION}
EXTRAS=${INFERGRAPH_EXTRAS:-all}
SUITE=bookworm
PACKAGES=python3,python3-venv,ca-certificates,libgomp1  # libgomp1: LightGBM's OpenMP
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${INFERGRAPH_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/infergraph/image}
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3.11; fi
fi
START=$SECONDS

say() { echo "[build-runtime-image] $*" >&2; }
die() { echo "[build-runtime-image] error: $*" >&2; exit 1; }
short_hash() { sha256sum | cut -c1-16; }

[[ $(id -u) == 0 ]] || die "run as root: debootstrap and chroot need it"
for tool in podman tar chroot flock; do
    command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install -y podman runc debootstrap)"
done
[[ -n "$VERSION" ]] || die "cannot read the version from src/infergraph/_version.py"
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip; set PYTHON to a Python with pip"

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9  # one build at a time: concurrent runs share the cache

# ---- 1. the Debian root file system (minutes, once per package list)
ROOTFS_KEY=$(printf '%s\n' "$SUITE" minbase "$PACKAGES" "$MIRROR" | short_hash)
ROOTFS="$CACHE/rootfs-$ROOTFS_KEY"
if [[ -f "$ROOTFS.done" ]]; then
    say "1/5 root file system: cached $ROOTFS"
else
    command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install -y debootstrap)"
    say "1/5 root file system: debootstrap --variant=minbase --include=$PACKAGES $SUITE from $MIRROR (a few minutes, once)"
    rm -rf "$ROOTFS" "$ROOTFS.partial"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS.partial" "$MIRROR" >&2
    rm -rf "$ROOTFS.partial"/var/cache/apt/archives/*.deb "$ROOTFS.partial"/var/lib/apt/lists/*
    mv "$ROOTFS.partial" "$ROOTFS"
    touch "$ROOTFS.done"
fi

# The wheels must fit the image's Python to the patch level (environment markers), so pip
# resolves under a host Python of exactly that version.
ROOT_PYTHON=$(cat "$ROOTFS.python" 2>/dev/null || true)
if [[ -z "$ROOT_PYTHON" ]]; then
    ROOT_PYTHON=$(chroot "$ROOTFS" /usr/bin/python3 -c 'import platform; print(platform.python_version())')
    echo "$ROOT_PYTHON" > "$ROOTFS.python"
fi
if [[ -z "${TARGET_PYTHON:-}" ]]; then
    for candidate in /usr/bin/python3 "python${ROOT_PYTHON%.*}" python3; do
        found=$(command -v "$candidate" 2>/dev/null) || continue
        version=$("$found" -c 'import platform; print(platform.python_version())' 2>/dev/null) || continue
        if [[ "$version" == "$ROOT_PYTHON" ]]; then TARGET_PYTHON=$found; break; fi
    done
fi
[[ -n "${TARGET_PYTHON:-}" ]] || die "no Python $ROOT_PYTHON (the image's) on this host: install \
Debian $SUITE's python3 or set TARGET_PYTHON to one; pip chooses the wheels under it"
PIP=("$PYTHON" -m pip --python "$TARGET_PYTHON")

# ---- 2. the infergraph wheel, by a hash of the files it is built from
SOURCE_KEY=$(cd "$ROOT" && {
    find src -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum
    sha256sum pyproject.toml README.md
} | short_hash)
DIST="$CACHE/dist-$SOURCE_KEY"
if compgen -G "$DIST/infergraph-*.whl" >/dev/null; then
    say "2/5 infergraph wheel: cached $DIST"
else
    say "2/5 infergraph wheel: pip wheel --no-deps $ROOT"
    rm -rf "$DIST.partial"
    "$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$DIST.partial" "$ROOT" >&2
    mv "$DIST.partial" "$DIST"
    for old in "$CACHE"/dist-*; do [[ "$old" == "$DIST" ]] || rm -rf "$old"; done
fi
WHEEL=$(compgen -G "$DIST/infergraph-*.whl" | head -n1)

# ---- 3. every dependency as a wheel, by a hash of the dependency list and the extras
DEPS_KEY=$( { sha256sum < "$ROOT/pyproject.toml"; echo "$EXTRAS $ROOT_PYTHON"; } | short_hash)
WHEELHOUSE="$CACHE/wheels-$DEPS_KEY"
if [[ -f "$WHEELHOUSE.done" ]]; then
    say "3/5 dependency wheels: cached $WHEELHOUSE"
else
    say "3/5 dependency wheels: pip --python $TARGET_PYTHON wheel infergraph[$EXTRAS] into $WHEELHOUSE"
    rm -rf "$WHEELHOUSE"
    "${PIP[@]}" wheel --quiet --wheel-dir "$WHEELHOUSE" "$WHEEL[$EXTRAS]" >&2
    rm -f "$WHEELHOUSE"/infergraph-*.whl  # the wheel of these sources comes from step 2
    touch "$WHEELHOUSE.done"
fi

# ---- 4. the dependency layer: the root file system with a venv of every dependency
# (minutes, once per root file system and dependency set), imported as its own image
LAYER_KEY=$( {
    echo "$ROOTFS_KEY $DEPS_KEY $EXTRAS"
    ls "$WHEELHOUSE"
    sed -n '/^# ---- 4\./,/^# ---- 5\./p' "$SCRIPT"  # how this layer is made
} | short_hash)
DEPS_IMAGE="localhost/infergraph-deps:$LAYER_KEY"
if podman image exists "$DEPS_IMAGE"; then
    say "4/5 dependency layer: cached $DEPS_IMAGE"
else
    WORK=$(mktemp -d "$CACHE/work.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
    say "4/5 dependency layer: the dependencies of infergraph[$EXTRAS] into /opt/infergraph in a copy of the root file system"
    cp -a "$ROOTFS" "$WORK/root"
    mkdir -p "$WORK/root/tmp/wheels"
    cp "$WHEELHOUSE"/*.whl "$WHEEL" "$WORK/root/tmp/wheels/"
    in_root() { chroot "$WORK/root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
        PATH=/opt/infergraph/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
    in_root python3 -m venv /opt/infergraph
    in_root pip install --quiet --no-index --find-links /tmp/wheels --no-cache-dir \
        --disable-pip-version-check "infergraph[$EXTRAS]" >&2
    # infergraph itself goes in the top layer, which changes with every source change
    in_root pip uninstall --quiet --yes --disable-pip-version-check infergraph >&2
    in_root useradd --uid 8888 --user-group --create-home --home-dir /home/infergraph \
        --shell /usr/sbin/nologin infergraph
    mkdir -p "$WORK/root/microservice" "$WORK/root/mnt/models"
    chown 8888:8888 "$WORK/root/microservice" "$WORK/root/mnt/models"
    rm -rf "$WORK/root/tmp/wheels" "$WORK/root/root/.cache" "$WORK/root"/usr/share/doc/* \
        "$WORK/root"/usr/share/man/* "$WORK/root"/var/log/*.log
    say "4/5 dependency layer: tar | podman import as $DEPS_IMAGE ($(du -sm "$WORK/root" | cut -f1) MB)"
    tar --numeric-owner -C "$WORK/root" -c . | podman import \
        --change 'ENV PATH=/opt/infergraph/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PYTHONUNBUFFERED=1' \
        --change 'ENV PIP_NO_CACHE_DIR=1' \
        --change 'ENV PIP_DISABLE_PIP_VERSION_CHECK=1' \
        --change 'USER 8888' \
        --change 'WORKDIR /microservice' \
        --message "scripts/build-runtime-image.sh: the dependencies of infergraph[$EXTRAS] on Debian $SUITE" \
        - "$DEPS_IMAGE" >/dev/null
    rm -rf "$WORK"
    for old in $(podman images --format '{{.Repository}}:{{.Tag}}' localhost/infergraph-deps); do
        [[ "$old" == "$DEPS_IMAGE" ]] || podman rmi "$old" >/dev/null 2>&1 || true
    done
fi

# ---- 5. the image: infergraph's wheel on the dependency layer (seconds), unless there
CONTENT=$( { echo "$LAYER_KEY $SOURCE_KEY"; sha256sum < "$SCRIPT"; } | short_hash)
EXISTING=$(podman image inspect --format '{{ index .Labels "io.infergraph.content" }}' "$IMAGE" 2>/dev/null || true)
if [[ "$EXISTING" == "$CONTENT" ]]; then
    say "5/5 image $IMAGE is up to date (content $CONTENT); done in $((SECONDS - START)) s"
    echo "$IMAGE"
    exit 0
fi
OLD_ID=$(podman image inspect --format '{{ .Id }}' "$IMAGE" 2>/dev/null || true)
# Where the default OCI runtime or rlimits are refused (containers in containers), runc and
# an empty ulimit list work, and both are harmless elsewhere; INFERGRAPH_OCI_RUNTIME and
# CONTAINERS_CONF choose otherwise.
RUNTIME=${INFERGRAPH_OCI_RUNTIME:-$(command -v runc >/dev/null && echo runc || true)}
if [[ -z "${CONTAINERS_CONF:-}" ]]; then
    export CONTAINERS_CONF="$CACHE/containers.conf"
    printf '[containers]\ndefault_ulimits = []\n' > "$CONTAINERS_CONF"
fi
CONTEXT=$(mktemp -d "$CACHE/context.XXXXXX")
trap 'rm -rf "$CONTEXT"' EXIT
WHEEL_NAME=$(basename "$WHEEL")
cp "$WHEEL" "$CONTEXT/"
{
    echo "FROM $DEPS_IMAGE"
    echo "USER root"
    echo "COPY $WHEEL_NAME /tmp/"
    echo "RUN pip install --quiet --no-deps --no-index /tmp/$WHEEL_NAME \\"
    echo "    && pip freeze > /opt/infergraph/requirements.lock && rm /tmp/$WHEEL_NAME"
    echo "USER 8888"
    echo "EXPOSE 9000 5000 6000 8000 5001"
    echo 'ENTRYPOINT ["infergraph"]'
    echo 'CMD ["--help"]'
    echo "LABEL io.infergraph.content=$CONTENT io.infergraph.version=$VERSION io.infergraph.extras=$EXTRAS"
} > "$CONTEXT/Containerfile"
say "5/5 podman build $IMAGE: the infergraph wheel on $DEPS_IMAGE (content $CONTENT)"
podman ${RUNTIME:+--runtime "$RUNTIME"} build --quiet --network none \
    -t "$IMAGE" -f "$CONTEXT/Containerfile" "$CONTEXT" >/dev/null
NEW_ID=$(podman image inspect --format '{{ .Id }}' "$IMAGE")
if [[ -n "$OLD_ID" && "$OLD_ID" != "$NEW_ID" ]]; then
    podman rmi "$OLD_ID" >/dev/null 2>&1 || true  # still used by a container or another tag
fi
say "built $IMAGE in $((SECONDS - START)) s"
echo "$IMAGE"
