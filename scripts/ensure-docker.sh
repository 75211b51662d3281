#!/usr/bin/env bash
# Make sure a Docker engine answers.
#
# Usage: scripts/ensure-docker.sh
#
# - If `docker info` already answers (DOCKER_HOST / docker context respected):
#   print the engine version and exit 0. Such an engine is never stopped,
#   restarted or reconfigured.
# - Else: install docker.io (apt) if dockerd is missing, start dockerd in the
#   background (log: /var/log/container-pool-dockerd.log, pid file
#   /var/run/docker.pid), wait up to 60 s for it to answer, and write the marker
#   /run/container-pool/dockerd.started-by-project (STATE/PID/SOCKET/...) that
#   lets scripts/engine-control.sh (and tests) stop/restart that engine only.
#
# stdout: one line `DOCKER_SERVER_VERSION=<version>`; logs go to stderr.
#
# Env: DOCKER_HOST (unix:// only when an engine has to be started),
#      CONTAINER_POOL_DOCKERD_LOG, CONTAINER_POOL_DOCKERD_START_TIMEOUT (60),
#      CONTAINER_POOL_STORAGE_DRIVER (overlay2), CONTAINER_POOL_DOCKERD_ARGS
#      (extra dockerd flags), CONTAINER_POOL_RUN_DIR (/run/container-pool).
set -euo pipefail
CP_SCRIPT_NAME=ensure-docker
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

report_answering() {
  local v
  v="$(docker_server_version)"
  log "Docker engine ${v:-?} answering at ${DOCKER_HOST:-default socket/context}"
  echo "DOCKER_SERVER_VERSION=${v}"
}

# Drop a marker whose dockerd is gone, so a later, unrelated dockerd that
# happens to reuse the PID is never mistaken for ours.
drop_stale_marker() {
  [ -f "$CP_MARKER" ] || return 0
  local pid state
  pid="$(marker_get PID)"
  state="$(marker_get STATE)"
  if [ "$state" = running ] && ! is_dockerd_pid "$pid"; then
    log "removing stale marker $CP_MARKER (dockerd pid $pid is gone)"
    rm -f "$CP_MARKER"
  fi
}

ensure_started() {
  local sock="$1"
  # Re-check under the lock: someone may have started it meanwhile.
  if docker_answers; then return 0; fi
  drop_stale_marker

  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    log "dockerd not found: installing Debian's docker.io"
    apt_install docker.io containerd runc tini iptables
  fi
  if ! command -v docker-init >/dev/null 2>&1; then
    log "docker-init (tini) missing; needed for 'docker run --init'"
    apt_install tini
  fi

  local pids pid ours
  pids="$(main_dockerd_pids)"
  if [ -n "$pids" ]; then
    ours="$(marker_get PID)"
    for pid in $pids; do
      if [ "$pid" = "$ours" ]; then
        log "project's dockerd (pid $pid) is running but not answering yet; waiting up to ${CP_DOCKERD_START_TIMEOUT}s"
      else
        log "a dockerd not started by the project (pid $pid) is running with the default pid file but not answering; waiting up to ${CP_DOCKERD_START_TIMEOUT}s"
      fi
    done
    local deadline=$((SECONDS + CP_DOCKERD_START_TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
      docker_answers && return 0
      [ -n "$(main_dockerd_pids)" ] || break
      sleep 1
    done
    if [ -n "$(main_dockerd_pids)" ]; then
      tail -n 20 "$CP_DOCKERD_LOG" >&2 2>/dev/null || true
      die "dockerd (pid(s) $(main_dockerd_pids | tr '\n' ' ')) runs but docker info does not answer; refusing to start a second engine"
    fi
    log "that dockerd exited; starting a new one"
  fi

  start_dockerd "$sock"
  docker_answers || die "dockerd started on unix://$sock but plain 'docker info' does not answer (DOCKER_HOST=${DOCKER_HOST:-unset}; check 'docker context ls')"
}

main() {
  command -v docker >/dev/null 2>&1 && docker_answers && {
    drop_stale_marker
    report_answering
    return 0
  }
  local sock
  sock="$(engine_socket)" || die "DOCKER_HOST=${DOCKER_HOST} does not answer and is not a unix:// socket; refusing to start a local engine for it"
  log "no Docker engine answers (socket unix://$sock); starting one"
  need_root
  with_engine_lock ensure_started "$sock"
  report_answering
}

main "$@"
