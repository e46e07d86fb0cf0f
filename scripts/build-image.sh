#!/usr/bin/env bash
# Builds and exercises the ingestor's image on a machine with no Docker engine and no reachable
# image registry (CI here): Debian's podman builds docker/Dockerfile with chroot isolation on a
# base image made locally from Debian's packages, and the image's own commands then run in a
# chroot of its filesystem, as its non-root user, sharing the host's network.
#
#   scripts/build-image.sh build [TAG]            base image (cached) + image; prints TAG
#   scripts/build-image.sh run TAG [VAR=VALUE ...] [-- ARG ...]
#                                                 the image's entrypoint with ARGs (default: its
#                                                 CMD), its user, workdir and environment
#   scripts/build-image.sh smoke [TAG]            quick checks of a built image (below)
#   scripts/build-image.sh size TAG               the image's size in bytes
#   scripts/build-image.sh unmount TAG            undo the image mounts `run` made
#
# Needs root (debootstrap, podman, chroot). Installs debootstrap and podman with apt-get when
# missing. The debootstrapped base is kept as a tarball under INGESTOR_IMAGE_CACHE (default
# /var/tmp/ingestor-image-cache) and re-imported only when its recipe changes.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_DIR=${INGESTOR_IMAGE_CACHE:-/var/tmp/ingestor-image-cache}
IMAGE_TAG_DEFAULT=localhost/ha-ingestor:ci
BASE_TAG=localhost/ingestor-base:bookworm
SUITE=bookworm
# What the official python:3.11-slim image offers that the Dockerfile relies on: python3.11 as
# python3 with the venv module, CA certificates. psycopg[binary] bundles libpq: no libpq5.
BASE_PACKAGES=python3.11,python3-venv,ca-certificates
# Bump when the trimming below changes: the cached base is rebuilt when this key changes.
BASE_RECIPE="v1 $SUITE $BASE_PACKAGES"
BASE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf 'build-image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

ensure_tools() {
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v podman >/dev/null || missing+=(podman)
    [ "${#missing[@]}" -eq 0 ] && return
    [ "$(id -u)" -eq 0 ] || die "needs root to install ${missing[*]}"
    log "installing ${missing[*]} from Debian's packages"
    timeout 300 apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive timeout 600 \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if ! command -v debootstrap >/dev/null || ! command -v podman >/dev/null; then
        die "debootstrap or podman still missing after apt-get install"
    fi
}

# The Debian mirror this machine's apt uses (both sources.list formats): debootstrap must use
# the same one, being the only Debian host the machine may reach.
debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then
        echo "$DEBIAN_MIRROR"
        return
    fi
    local mirror
    # shellcheck disable=SC2016 # $(...) are apt's own placeholders, not shell expansions
    mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
        awk -v suite="$SUITE" '$2 == suite { print $1; exit }')
    [ -n "$mirror" ] || die "no $SUITE entry in apt's sources: set DEBIAN_MIRROR"
    echo "$mirror"
}

recipe_key() { printf '%s' "$BASE_RECIPE" | sha256sum | cut -c1-16; }

# A minimal Debian with Python 3.11, trimmed the way the official slim images are (no apt
# lists or caches, documentation, manuals or translations), as a tarball in the cache.
make_base_tarball() {
    local tarball=$1 rootfs="$CACHE_DIR/rootfs.$$"
    mkdir -p "$CACHE_DIR"
    rm -rf "$rootfs"
    log "debootstrap $SUITE from $(debian_mirror) (a minute or two)"
    if ! timeout 900 debootstrap --variant=minbase --include="$BASE_PACKAGES" \
        "$SUITE" "$rootfs" "$(debian_mirror)" >"$CACHE_DIR/debootstrap.log" 2>&1; then
        tail -n 20 "$CACHE_DIR/debootstrap.log" >&2
        rm -rf "$rootfs"
        die "debootstrap failed (log: $CACHE_DIR/debootstrap.log)"
    fi
    rm -rf "${rootfs:?}"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* \
        "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
        "${rootfs:?}"/dev/* "$rootfs"/etc/resolv.conf "$rootfs"/etc/hostname
    find "$rootfs"/usr/share/doc -type f ! -name copyright -delete
    tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
}

ensure_base_image() {
    local key tarball
    key=$(recipe_key)
    tarball="$CACHE_DIR/base-$SUITE-$key.tar"
    if [ "$(podman image inspect --format '{{index .Labels "ingestor.base-recipe"}}' \
        "$BASE_TAG" 2>/dev/null)" = "$key" ]; then
        log "base image $BASE_TAG is current"
        return
    fi
    [ -f "$tarball" ] || make_base_tarball "$tarball"
    log "importing $tarball as $BASE_TAG"
    timeout 300 podman import --quiet \
        --change "ENV PATH=$BASE_PATH" --change "ENV LANG=C.UTF-8" \
        --change 'CMD ["python3"]' --change "LABEL ingestor.base-recipe=$key" \
        "$tarball" "$BASE_TAG" >/dev/null
}

# pip inside the build trusts only what the base image trusts, and this machine may reach
# PyPI through a TLS-inspecting proxy with a CA of its own: hand the build the host's CA bundle
# as a read-only mount of the RUN steps (over a directory every base has, so nothing is left in
# a layer) and name it to pip through the Dockerfile's build-stage arguments, with the host's
# package index when it is an http(s) one.
build_options() {
    local work=$1 ca index
    ca=${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
    [ -f "$ca" ] || die "no CA bundle at $ca (set PIP_CERT)"
    mkdir -p "$work/certs"
    cp "$ca" "$work/certs/ca-certificates.crt"
    echo "--volume=$work/certs:/etc/ssl/certs:ro"
    echo "--build-arg=PIP_CERT=/etc/ssl/certs/ca-certificates.crt"
    index=${PIP_INDEX_URL:-$(pip3 config get global.index-url 2>/dev/null || true)}
    case "$index" in http://* | https://*) echo "--build-arg=PIP_INDEX_URL=$index" ;; esac
}

cmd_build() {
    local tag=${1:-$IMAGE_TAG_DEFAULT} options started
    [ "$(id -u)" -eq 0 ] || die "needs root"
    ensure_tools
    ensure_base_image
    BUILD_WORK=$(mktemp -d)
    trap 'rm -rf "$BUILD_WORK"' EXIT
    build_options "$BUILD_WORK" >"$BUILD_WORK/options"
    mapfile -t options <"$BUILD_WORK/options"
    started=$(date +%s)
    log "podman build $tag"
    timeout 900 podman build --isolation chroot --format docker --pull=never --layers \
        --build-arg "BASE_IMAGE=$BASE_TAG" "${options[@]}" \
        -f "$ROOT/docker/Dockerfile" -t "$tag" "$ROOT" >&2 ||
        die "podman build failed"
    log "built $tag in $(($(date +%s) - started)) s, $(cmd_size "$tag") bytes"
    echo "$tag"
}

cmd_size() { podman image inspect --format '{{.Size}}' "$1"; }

# Runs the image's entrypoint the way a container runtime would, minus the isolation it cannot
# have here: a private mount namespace (gone with the process) over the read-only image
# filesystem, a fresh tmpfs on /tmp and on the data directory, /proc and /dev, then a chroot as
# the image's user with exactly the image's environment plus VAR=VALUE arguments. The process
# keeps the caller's pid (exec all the way), so the caller can signal it.
cmd_run() {
    local tag=$1 rootfs user workdir
    shift
    local extra_env=() args=()
    while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
        extra_env+=("$1")
        shift
    done
    [ "$#" -gt 0 ] && shift
    args=("$@")
    rootfs=$(podman image mount "$tag")
    user=$(podman image inspect --format '{{.Config.User}}' "$tag")
    workdir=$(podman image inspect --format '{{.Config.WorkingDir}}' "$tag")
    local image_env entrypoint cmd
    mapfile -t image_env < <(podman image inspect --format \
        '{{range .Config.Env}}{{println .}}{{end}}' "$tag" | sed '/^$/d')
    mapfile -t entrypoint < <(podman image inspect --format \
        '{{range .Config.Entrypoint}}{{println .}}{{end}}' "$tag" | sed '/^$/d')
    mapfile -t cmd < <(podman image inspect --format \
        '{{range .Config.Cmd}}{{println .}}{{end}}' "$tag" | sed '/^$/d')
    [ "${#args[@]}" -gt 0 ] || args=("${cmd[@]}")
    exec unshare --mount --propagation private -- bash "${BASH_SOURCE[0]}" __chroot \
        "$rootfs" "${user:-0:0}" "${workdir:-/}" "${#image_env[@]}" "${image_env[@]}" \
        "${#extra_env[@]}" "${extra_env[@]}" "${entrypoint[@]}" "${args[@]}"
}

# Inside the private mount namespace of cmd_run.
cmd_chroot() {
    local rootfs=$1 user=$2 workdir=$3 count env_vars=() data_dir=/data
    shift 3
    count=$1
    shift
    env_vars+=("${@:1:$count}")
    shift "$count"
    count=$1
    shift
    env_vars+=("${@:1:$count}")
    shift "$count"
    local var
    for var in "${env_vars[@]}"; do
        case "$var" in DATA_DIR=*) data_dir=${var#DATA_DIR=} ;; esac
    done
    local uid=${user%%:*} gid=${user#*:}
    mount -t tmpfs -o mode=1777,size=256m tmpfs "$rootfs/tmp"
    mount -t tmpfs -o "mode=0750,uid=$uid,gid=$gid,size=256m" tmpfs "$rootfs$data_dir"
    mount -t proc proc "$rootfs/proc"
    mount --rbind /dev "$rootfs/dev"
    exec chroot --userspec="$user" "$rootfs" /usr/bin/env -i -C "$workdir" \
        "${env_vars[@]}" "$@"
}

# Quick checks that need no service: the process runs as non-root, no compiler is in the image,
# the role commands start, and Django's deployment checks pass (errors fail; warnings, such as
# HSTS preload advice, are printed) with production settings behind a TLS-terminating proxy.
cmd_smoke() {
    local tag=${1:-$IMAGE_TAG_DEFAULT} rootfs compiler uid
    rootfs=$(podman image mount "$tag")
    for compiler in gcc cc c++ make; do
        [ ! -e "$rootfs/usr/bin/$compiler" ] || die "$compiler is in the image"
    done
    uid=$(bash "${BASH_SOURCE[0]}" run "$tag" -- id -u)
    [ "$uid" != 0 ] || die "the image runs as root"
    bash "${BASH_SOURCE[0]}" run "$tag" DEBUG=false ALLOWED_HOSTS=ingestor.example.org \
        SECRET_KEY="$(head -c 48 /dev/urandom | base64 | tr -d '/+=')" \
        SECURE_SSL_REDIRECT=true SECURE_HSTS_SECONDS=31536000 \
        -- manage check --deploy
    bash "${BASH_SOURCE[0]}" run "$tag" -- gunicorn --version >/dev/null
    bash "${BASH_SOURCE[0]}" run "$tag" -- celery --version >/dev/null
    log "smoke checks passed (uid $uid)"
}

cmd_unmount() { podman image unmount --force "$1" >/dev/null 2>&1 || true; }

case "${1:-}" in
    build) shift && cmd_build "$@" ;;
    run) shift && cmd_run "$@" ;;
    __chroot) shift && cmd_chroot "$@" ;;
    smoke) shift && cmd_smoke "$@" ;;
    size) shift && cmd_size "$@" ;;
    unmount) shift && cmd_unmount "$@" ;;
    *) sed -n '2,17p' "${BASH_SOURCE[0]}" >&2 && exit 2 ;;
esac
