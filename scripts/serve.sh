#!/usr/bin/env bash
# Runs the service on a fresh machine: installs npm packages when missing, gets a Docker engine answering,
# makes sure the sandbox image is there (pulls POOL_IMAGE, default python:3.13-slim; when that cannot be pulled,
# e.g. without a registry, builds the offline image container-pool-sandbox:bookworm and uses it), builds the
# data-science image of the service's datascience profile when it is missing (container-pool-datascience:bookworm,
# DATASCIENCE_IMAGE; about 70 s once; not when POOL_PROFILES names the profiles or CONTAINER_POOL_DATASCIENCE=0),
# builds and starts `node dist/main.js` on HOST:PORT (default 127.0.0.1:3000). Settings: .env / POOL_* (see
# .env.example).
#
# Stopping: SIGTERM, SIGINT (Ctrl-C) or SIGHUP to any process of the chain.
# - During the setup: the step running (npm ci, apt-get, dockerd's start, docker pull, the image build, tsc) and
#   every process it started are stopped (SIGTERM, SIGKILL after CP_SERVE_STOP_GRACE seconds, default 5), and the
#   script exits with 128 + the signal's number. A dockerd it started keeps running (it lives in a session of its
#   own, as an engine that already answered would).
# - Once the service runs: it stops gracefully (every container removed, exit 0). `npm run serve` runs
#   `exec bash scripts/serve.sh`, which ends in `exec node`, so npm's own child is the service and npm passes it
#   the signals it gets. CONTAINER_POOL_PARENT_PID names the process that started the script (node's parent after
#   the exec): the service stops as soon as that process is gone (already gone at its start included), e.g. the
#   script run under a shell that dies of a signal without passing it on. CONTAINER_POOL_EXIT_WITH_PARENT=0 turns
#   that off.
#
# Usage: npm run serve
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CP_SCRIPT_NAME="serve"
# shellcheck source=lib/common.sh
. scripts/lib/common.sh

# Each setup step runs in the background, in a session of its own, and the script waits for it: bash runs a trap
# only once the foreground command has ended, but it interrupts `wait` at once. The trap then signals every
# process of the step's session (GNU timeout, for one, moves itself to a process group of its own).
CP_SERVE_STOP_GRACE="${CP_SERVE_STOP_GRACE:-5}"
step_sid=""
stopping=""

# Whether a process of the step's session still runs (a zombie, dead but not yet reaped by its new parent, does
# not count).
step_alive() { [ -n "$step_sid" ] && ps -o stat= -s "$step_sid" 2>/dev/null | grep -qv '^Z'; }

stop_setup() {
  local sig="$1" code="$2" waited=0
  # A second signal while stopping: the first one's handler goes on.
  if [ -n "$stopping" ]; then return 0; fi
  stopping=1
  log "received SIG$sig during the setup: stopping it"
  if step_alive; then
    pkill -TERM -s "$step_sid" 2>/dev/null || true
    while step_alive && [ "$waited" -lt $((CP_SERVE_STOP_GRACE * 10)) ]; do
      sleep 0.1
      waited=$((waited + 1))
    done
    if step_alive; then
      warn "the setup step still runs after ${CP_SERVE_STOP_GRACE}s: SIGKILL"
      pkill -KILL -s "$step_sid" 2>/dev/null || true
    fi
  fi
  exit "$code"
}
trap 'stop_setup HUP 129' HUP
trap 'stop_setup INT 130' INT
trap 'stop_setup TERM 143' TERM

# step CMD [ARG...]: runs CMD (a command, or a function of scripts/lib/common.sh) as a setup step; returns its
# exit status. Redirections of the call apply to the step.
step() {
  local rc=0
  setsid bash -c 'set -euo pipefail; CP_SCRIPT_NAME=serve; . scripts/lib/common.sh; "$@"' serve "$@" &
  # Not a process group leader (no job control here), so setsid made its own pid the session id.
  step_sid=$!
  wait "$step_sid" || rc=$?
  # The step's leader has ended; what it left in its session ends with it.
  if step_alive; then pkill -TERM -s "$step_sid" 2>/dev/null || true; fi
  step_sid=""
  return "$rc"
}

step ensure_node_packages @nestjs/core
step bash scripts/ensure-docker.sh >/dev/null

# A variable as .env sets it (the app reads .env itself; this only decides which images to prepare).
dotenv_value() { if [ -f .env ]; then sed -n "s/^$1=//p" .env | tail -n 1; fi; }
POOL_IMAGE="${POOL_IMAGE:-$(dotenv_value POOL_IMAGE)}"
image="${POOL_IMAGE:-python:3.13-slim}"
if step docker image inspect "$image" >/dev/null 2>&1; then
  log "image $image is on the engine"
elif step timeout 60 docker pull "$image" >&2; then
  log "pulled $image"
else
  offline="${SANDBOX_IMAGE:-container-pool-sandbox:bookworm}"
  log "cannot pull $image (no registry?): using the offline image $offline"
  step bash scripts/build-sandbox-image.sh sandbox
  image="$offline"
fi
export POOL_IMAGE="$image"

# The datascience profile (src/cli/service-profiles.ts): its image is built here when missing. A failed build
# leaves that profile degraded (its calls fail with IMAGE_UNAVAILABLE); the default profile still serves.
# Decided as the service decides it (datascience_profile_wanted), so it is not built for a service without it.
ds_switch="${CONTAINER_POOL_DATASCIENCE:-$(dotenv_value CONTAINER_POOL_DATASCIENCE)}"
ds_profiles="${POOL_PROFILES:-$(dotenv_value POOL_PROFILES)}"
ds_name="${POOL_NAME:-$(dotenv_value POOL_NAME)}"
if datascience_profile_wanted "$ds_switch" "$ds_profiles" "$ds_name"; then
  ds_image="${POOL_PROFILE__DATASCIENCE__IMAGE:-$(dotenv_value POOL_PROFILE__DATASCIENCE__IMAGE)}"
  ds_image="${ds_image:-${DATASCIENCE_IMAGE:-$(dotenv_value DATASCIENCE_IMAGE)}}"
  ds_image="${ds_image:-container-pool-datascience:bookworm}"
  if step docker image inspect "$ds_image" >/dev/null 2>&1; then
    log "image $ds_image (profile datascience) is on the engine"
  elif step env DATASCIENCE_IMAGE="$ds_image" bash scripts/build-sandbox-image.sh datascience >&2; then
    log "built $ds_image (profile datascience)"
  else
    warn "could not build $ds_image: the datascience profile will be degraded (CONTAINER_POOL_DATASCIENCE=0 leaves it out)"
  fi
fi

log "building"
step npm run --silent build
log "starting the service with POOL_IMAGE=$POOL_IMAGE"
export CONTAINER_POOL_EXIT_WITH_PARENT="${CONTAINER_POOL_EXIT_WITH_PARENT:-1}"
# node's parent once this shell has exec'd it. The service watches it from its first line of JavaScript on.
export CONTAINER_POOL_PARENT_PID="$PPID"
trap - HUP INT TERM
exec node dist/main.js
