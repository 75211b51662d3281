#!/usr/bin/env bash
# Runs the service on a fresh machine: installs npm packages when missing, gets a Docker engine answering,
# makes sure the sandbox image is there (pulls POOL_IMAGE, default python:3.13-slim; when that cannot be pulled,
# e.g. without a registry, builds the offline image container-pool-sandbox:bookworm and uses it), builds and
# starts `node dist/main.js` on HOST:PORT (default 127.0.0.1:3000). Settings: .env / POOL_* (see .env.example).
#
# Stopping: SIGTERM or SIGINT (Ctrl-C) to any process of the chain stops the service gracefully (every container
# removed, exit 0). `npm run serve` runs `exec bash scripts/serve.sh`, which ends in `exec node`, so npm's own
# child is the service and npm passes it the signals it gets; CONTAINER_POOL_EXIT_WITH_PARENT=1 also makes the
# service stop when its parent goes away (e.g. the script run under a shell that dies without passing a signal).
#
# Usage: npm run serve
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CP_SCRIPT_NAME="serve"
# shellcheck source=lib/common.sh
. scripts/lib/common.sh
ensure_node_packages @nestjs/core

bash scripts/ensure-docker.sh >/dev/null

if [ -f .env ]; then
  # POOL_IMAGE may be set there; the app reads .env itself, this only decides which image to prepare.
  env_image="$(sed -n 's/^POOL_IMAGE=//p' .env | tail -n 1)"
  POOL_IMAGE="${POOL_IMAGE:-$env_image}"
fi
image="${POOL_IMAGE:-python:3.13-slim}"
if docker image inspect "$image" >/dev/null 2>&1; then
  log "image $image is on the engine"
elif timeout 60 docker pull "$image" >&2; then
  log "pulled $image"
else
  offline="${SANDBOX_IMAGE:-container-pool-sandbox:bookworm}"
  log "cannot pull $image (no registry?): using the offline image $offline"
  bash scripts/build-sandbox-image.sh sandbox
  image="$offline"
fi
export POOL_IMAGE="$image"

log "building"
npm run --silent build
log "starting the service with POOL_IMAGE=$POOL_IMAGE"
export CONTAINER_POOL_EXIT_WITH_PARENT="${CONTAINER_POOL_EXIT_WITH_PARENT:-1}"
exec node dist/main.js
