#!/usr/bin/env bash
# Prepares this machine to build and run simulatord's container images and compose stack with rootful podman.
#
# Idempotent: every step checks whether it is already done, so running it again costs a few seconds.
# Must run as root (CI runs it from a clean clone). What it does:
#   1. apt-get installs podman, runc, busybox-static and debootstrap (retrying while apt is locked);
#   2. creates a tool venv with podman-compose and check-jsonschema (kept out of the project's venv,
#      so the project's dependency set stays what pyproject.toml says);
#   3. writes a private containers.conf and storage.conf (runc instead of crun, explicit ulimits,
#      storage below the state directory) -- see shared/containers.md for why each setting is needed;
#   4. builds the base image localhost/bookworm-py:redis when it is missing (no image registry is
#      reachable) with debootstrap, or from a cached rootfs tarball less than a week old, and tags it
#      docker.io/library/python:3.11-slim, so that ordinary `FROM python:3.11-slim` Dockerfiles build
#      without a pull, and docker.io/library/redis:7-bookworm (it holds Debian's redis-server), for the
#      replicas example;
#   5. writes <state dir>/env, to be sourced, and prints its export lines.
#
# The state directory is <repo root>/.podman (gitignored) unless SIMULATORD_PODMAN_DIR says otherwise,
# so the script works from a clone anywhere. Other knobs: SIMULATORD_DEBIAN_MIRROR (the mirror debootstrap
# uses; default: the one apt already uses, read from /etc/apt/sources.list.d/) and SIMULATORD_IMAGE_CACHE
# (where the base image's rootfs tarball is cached for other clones; default /var/cache/simulatord).
#
# Usage:  bash scripts/podman-setup.sh && source .podman/env
set -euo pipefail

log() { printf "[podman-setup +%ss] %s\n" "$((SECONDS - T0))" "$*" >&2; }
die() { printf '[podman-setup] ERROR: %s\n' "$*" >&2; exit 1; }

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${SIMULATORD_PODMAN_DIR:-$REPO_ROOT/.podman}"
BASE_IMAGE="localhost/bookworm-py:redis"
PY_SLIM_TAG="docker.io/library/python:3.11-slim"
# The same image stands in for redis:7-bookworm (the replicas example); its services give the command.
REDIS_TAG="docker.io/library/redis:7-bookworm"
SUITE="bookworm" # bookworm's python3 is 3.11, which is what python:3.11-slim promises
T0=$SECONDS

[[ $(id -u) -eq 0 ]] || die "run as root: rootful podman and debootstrap need it (rootless podman is not set up here)"

# One run at a time (e.g. two pytest-xdist workers that both find the machine unprepared): the second
# waits, then finds every step done.
mkdir -p "$STATE_DIR"
exec 9>"$STATE_DIR/setup.lock"
flock -w 1200 9 || die "another podman-setup.sh run holds $STATE_DIR/setup.lock"

# --- 1. system packages ---------------------------------------------------------------------------
# apt may be busy (unattended upgrades, another session): wait for its locks and retry whole commands.
apt_retry() {
  local attempt
  for attempt in 1 2 3 4 5; do
    if DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 -o Acquire::Retries=3 "$@"; then
      return 0
    fi
    log "apt-get $* failed (attempt $attempt/5); retrying in $((attempt * 5)) s"
    sleep $((attempt * 5))
  done
  die "apt-get $* kept failing; check the network to the Debian mirror and 'fuser /var/lib/dpkg/lock-frontend'"
}

need_pkgs=()
command -v podman >/dev/null || need_pkgs+=(podman)
command -v runc >/dev/null || need_pkgs+=(runc)
[[ -x /bin/busybox ]] || need_pkgs+=(busybox-static)
command -v debootstrap >/dev/null || need_pkgs+=(debootstrap)
if ((${#need_pkgs[@]})); then
  log "installing ${need_pkgs[*]}"
  apt_retry update -q
  # Recommends stay on: they bring the network stack (netavark/aardvark-dns or CNI plugins) that
  # service-name DNS between compose services needs.
  apt_retry install -y -q "${need_pkgs[@]}"
else
  log "podman, runc, busybox-static and debootstrap already installed"
fi

# --- 2. tool venv: podman-compose, check-jsonschema -------------------------------------------------
TOOLS="$STATE_DIR/tools"
if ! "$TOOLS/bin/python" -c 'import podman_compose, check_jsonschema' 2>/dev/null; then
  log "creating tool venv $TOOLS"
  # Prefer the project's interpreter (3.11, known to have venv/ensurepip); else any python3.
  PY="$REPO_ROOT/.venv/bin/python"
  [[ -x $PY ]] || PY="$(command -v python3 || true)"
  [[ -n $PY ]] || die "no python3 found to create the tool venv"
  rm -rf "$TOOLS"
  "$PY" -m venv "$TOOLS" || die "python -m venv failed (on Debian: apt-get install python3-venv)"
  for attempt in 1 2 3; do
    # (grep drops pip's warnings about absent local index directories some machines configure)
    "$TOOLS/bin/pip" install -q "podman-compose>=1.2" "check-jsonschema>=0.29" 2> >(grep -v 'is ignored: it is neither' >&2) && break
    [[ $attempt -eq 3 ]] && die "pip install podman-compose check-jsonschema failed"
    log "pip install failed (attempt $attempt/3); retrying"
    sleep 5
  done
fi

# --- 3. private containers.conf / storage.conf ------------------------------------------------------
mkdir -p "$STATE_DIR"/{tmp,storage/volumes,run,netcfg}
# crun fails here ("cgroups in hybrid mode not supported") and the VM refuses podman's default
# RLIMIT_NOFILE of 1048576, hence runc and explicit ulimits.
cat >"$STATE_DIR/containers.conf.new" <<EOF
# Written by scripts/podman-setup.sh; selected with CONTAINERS_CONF. Rewritten on every run.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
tmp_dir = "$STATE_DIR/tmp"
volume_path = "$STATE_DIR/storage/volumes"

[network]
network_config_dir = "$STATE_DIR/netcfg"
EOF
cat >"$STATE_DIR/storage.conf.new" <<EOF
# Written by scripts/podman-setup.sh; selected with CONTAINERS_STORAGE_CONF. Rewritten on every run.
[storage]
driver = "overlay"
graphroot = "$STATE_DIR/storage"
runroot = "$STATE_DIR/run"
EOF
mv "$STATE_DIR/containers.conf.new" "$STATE_DIR/containers.conf"
mv "$STATE_DIR/storage.conf.new" "$STATE_DIR/storage.conf"

cat >"$STATE_DIR/env" <<EOF
# Source this file to use simulatord's private podman setup (written by scripts/podman-setup.sh).
export CONTAINERS_CONF="$STATE_DIR/containers.conf"
export CONTAINERS_STORAGE_CONF="$STATE_DIR/storage.conf"
export PATH="$TOOLS/bin:\$PATH"
# Docker image format: the OCI format has no HEALTHCHECK field, so buildah would drop it.
export BUILDAH_FORMAT=docker
EOF
# shellcheck disable=SC1091
source "$STATE_DIR/env"

podman info --format '{{.Host.OCIRuntime.Name}} {{.Store.GraphRoot}}' >/dev/null 2>&1 ||
  die "podman info fails with $CONTAINERS_CONF; run: CONTAINERS_CONF=$CONTAINERS_CONF CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF podman info"

# --- 4. the Python base image ------------------------------------------------------------------------
# The mirror apt already uses (and can reach): first URI of a deb822 or one-line source for $SUITE.
find_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    # deb822 stanzas are separated by blank lines; keep the URI of a stanza whose Suites has $SUITE.
    awk -v suite="$SUITE" '
      /^[[:space:]]*$/ { if (uri != "" && hit) { print uri; exit } uri = ""; hit = 0; next }
      /^[[:space:]]*#/ { next }
      tolower($1) == "uris:" { uri = $2 }
      tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) hit = 1 }
      END { if (uri != "" && hit) print uri }
    ' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    # "deb [opts] URI SUITE components"
    awk -v suite="$SUITE" '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
      if ($(i + 1) == suite) print $i }' "$f"
  done
}

# debootstrap mounts proc/sys inside the target; a killed run may leave them behind. Unmount them,
# and never let rm cross into another file system.
remove_rootfs() {
  local mnt
  while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done < <(
    awk -v r="$1/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r
  )
  rm -rf --one-file-system "$1"
}

# The rootfs tarball is cached machine-wide (not per clone), so a fresh clone on a machine that already
# ran this -- as CI's clone does on the session's machine -- skips the minute of debootstrap. A cache older
# than a week is rebuilt, to pick up Debian's security updates.
CACHE_DIR="${SIMULATORD_IMAGE_CACHE:-/var/cache/simulatord}"
ROOTFS_TAR="$CACHE_DIR/bookworm-py-redis-rootfs.tar"

build_rootfs_tar() {
  local mirror rootfs="$STATE_DIR/rootfs.tmp" ok=0 attempt
  mirror="${SIMULATORD_DEBIAN_MIRROR:-$(find_mirror | head -n1)}"
  mirror="${mirror:-http://deb.debian.org/debian}"
  log "debootstrap $SUITE from $mirror (about a minute)"
  remove_rootfs "$rootfs"
  for attempt in 1 2 3; do
    if debootstrap --variant=minbase --include=python3-minimal,python3-venv,redis-server \
      "$SUITE" "$rootfs" "$mirror" >"$STATE_DIR/debootstrap.log" 2>&1; then
      ok=1
      break
    fi
    log "debootstrap failed (attempt $attempt/3), last lines:"
    tail -n 5 "$STATE_DIR/debootstrap.log" >&2 || true
    remove_rootfs "$rootfs"
    sleep 5
  done
  ((ok)) || die "debootstrap failed; see $STATE_DIR/debootstrap.log"
  # Make the image look like python:3.11-slim where Dockerfiles care: `python` on PATH, UTF-8 locale,
  # no package caches, docs or translations (slim images drop them too; about 40 MB).
  # /dev, /proc and /sys are provided by the runtime, so they are left out of the tarball.
  ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
  find "$rootfs/usr/share/doc" -type f ! -name copyright -delete # licences stay
  mkdir -p "$CACHE_DIR"
  # Write then rename, so a concurrent reader never sees half a tarball.
  tar --numeric-owner -C "$rootfs" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
    -cf "$ROOTFS_TAR.$$" .
  mv -f "$ROOTFS_TAR.$$" "$ROOTFS_TAR"
  remove_rootfs "$rootfs"
}

if podman image exists "$BASE_IMAGE"; then
  log "$BASE_IMAGE exists"
else
  if [[ -f $ROOTFS_TAR ]] && [[ -z $(find "$ROOTFS_TAR" -mtime +7) ]]; then
    log "using cached rootfs $ROOTFS_TAR"
  else
    build_rootfs_tar
  fi
  log "importing rootfs as $BASE_IMAGE"
  podman import --quiet \
    --change 'CMD ["/usr/bin/python3"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    "$ROOTFS_TAR" "$BASE_IMAGE" >/dev/null
fi
# Re-tag every time: cheap, and repairs a removed tag.
podman tag "$BASE_IMAGE" "$PY_SLIM_TAG" "$REDIS_TAG"

log "ready in $((SECONDS - T0)) s; to use it:"
cat <<EOF
source $STATE_DIR/env
# or:
export CONTAINERS_CONF=$STATE_DIR/containers.conf CONTAINERS_STORAGE_CONF=$STATE_DIR/storage.conf PATH=$TOOLS/bin:\$PATH BUILDAH_FORMAT=docker
EOF
