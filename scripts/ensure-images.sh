#!/usr/bin/env bash
# Make sure a Docker engine answers and the images the pool and its tests need
# exist locally; print which pool image to use.
#
# Usage: scripts/ensure-images.sh [--force]
#
#   1. scripts/ensure-docker.sh
#   2. pool image: $POOL_IMAGE if it is set and exists locally; else
#      python:3.13-slim if present locally or pullable within $PULL_TIMEOUT s;
#      else the offline build $SANDBOX_IMAGE (scripts/build-sandbox-image.sh).
#   3. always the offline busybox image $BUSYBOX_IMAGE (used by tests).
#   4. always the offline data-science image $DATASCIENCE_IMAGE (numpy, pandas,
#      matplotlib; ~70 s once, a no-op when it exists).
#
# stdout (nothing else goes there):
#   POOL_IMAGE=<image to use>
#   BUSYBOX_IMAGE=<busybox image>
#   DATASCIENCE_IMAGE=<data-science image>
# e.g.  eval "$(scripts/ensure-images.sh)"; export POOL_IMAGE BUSYBOX_IMAGE DATASCIENCE_IMAGE
#
# --force rebuilds the offline images that this run uses.
# Env: POOL_IMAGE, PULL_IMAGE (python:3.13-slim), PULL_TIMEOUT (20),
#      CONTAINER_POOL_SKIP_PULL=1 (do not try the registry at all),
#      SANDBOX_IMAGE, BUSYBOX_IMAGE, DATASCIENCE_IMAGE (see build-sandbox-image.sh).
set -euo pipefail
CP_SCRIPT_NAME=ensure-images
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

FORCE=()
for a in "$@"; do
  case "$a" in
    --force | -f) FORCE=(--force) ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument: $a (usage: $0 [--force])" ;;
  esac
done

PULL_IMAGE="${PULL_IMAGE:-python:3.13-slim}"
PULL_TIMEOUT="${PULL_TIMEOUT:-20}"
export SANDBOX_IMAGE="${SANDBOX_IMAGE:-container-pool-sandbox:bookworm}"
export BUSYBOX_IMAGE="${BUSYBOX_IMAGE:-container-pool-busybox:latest}"
export DATASCIENCE_IMAGE="${DATASCIENCE_IMAGE:-container-pool-datascience:bookworm}"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

"$CP_SCRIPTS_DIR/ensure-docker.sh" >/dev/null

pool_image=""
if [ -n "${POOL_IMAGE:-}" ]; then
  if image_exists "$POOL_IMAGE"; then
    log "POOL_IMAGE=$POOL_IMAGE exists locally; using it"
    pool_image="$POOL_IMAGE"
  else
    warn "POOL_IMAGE=$POOL_IMAGE is not present locally; choosing another image"
  fi
fi

if [ -z "$pool_image" ]; then
  if image_exists "$PULL_IMAGE"; then
    log "$PULL_IMAGE exists locally; using it"
    pool_image="$PULL_IMAGE"
  elif [ "${CONTAINER_POOL_SKIP_PULL:-}" = 1 ]; then
    log "CONTAINER_POOL_SKIP_PULL=1: not trying to pull $PULL_IMAGE"
  else
    log "trying: docker pull $PULL_IMAGE (timeout ${PULL_TIMEOUT}s)"
    t0="$(now_s)"
    if out="$(timeout "$PULL_TIMEOUT" docker pull --quiet "$PULL_IMAGE" 2>&1)"; then
      log "pulled $PULL_IMAGE in $(elapsed_s "$t0")s"
      pool_image="$PULL_IMAGE"
    else
      log "pull failed after $(elapsed_s "$t0")s: $(printf '%s' "$out" | tail -n 1 | cut -c1-200)"
    fi
  fi
fi

if [ -z "$pool_image" ]; then
  log "using the offline image $SANDBOX_IMAGE"
  "$CP_SCRIPTS_DIR/build-sandbox-image.sh" "${FORCE[@]}" sandbox
  pool_image="$SANDBOX_IMAGE"
fi

"$CP_SCRIPTS_DIR/build-sandbox-image.sh" "${FORCE[@]}" busybox
"$CP_SCRIPTS_DIR/build-sandbox-image.sh" "${FORCE[@]}" datascience

echo "POOL_IMAGE=$pool_image"
echo "BUSYBOX_IMAGE=$BUSYBOX_IMAGE"
echo "DATASCIENCE_IMAGE=$DATASCIENCE_IMAGE"
