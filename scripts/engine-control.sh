#!/usr/bin/env bash
# Stop / start / restart the Docker engine, but ONLY the one that the project's
# own scripts started (scripts/ensure-docker.sh), as recorded in the marker
# /run/container-pool/dockerd.started-by-project.
#
# Usage: scripts/engine-control.sh stop|start|restart|status
#
#   stop     SIGTERM the project's dockerd, wait until its socket no longer
#            answers and the process is gone (containers die with it: no
#            live-restore). Marker kept with STATE=stopped.
#   start    start it again (same flags/log as ensure-docker.sh) and wait until
#            it answers. Only when the marker says STATE=stopped and no other
#            dockerd runs.
#   restart  stop, then start.
#   status   print state. Exit 0: project's engine running; 2: project's engine
#            stopped; 3: not started by the project.
#
# Exit 3 with "engine not started by the project's scripts; refusing" when the
# marker is missing or its PID is not the running dockerd.
set -euo pipefail
CP_SCRIPT_NAME=engine-control
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

REFUSE_MSG="engine not started by the project's scripts; refusing"

refuse() {
  log "$REFUSE_MSG${1:+ ($1)}"
  exit 3
}

usage() {
  echo "usage: $0 stop|start|restart|status" >&2
  exit 64
}

# Echo the state of the project's engine: running | stopped | foreign:<why>
project_state() {
  if [ ! -f "$CP_MARKER" ]; then
    echo "foreign:no marker $CP_MARKER"
    return
  fi
  local state pid sock
  state="$(marker_get STATE)"
  pid="$(marker_get PID)"
  sock="$(marker_get SOCKET)"
  [ -n "$sock" ] || {
    echo "foreign:marker has no SOCKET"
    return
  }
  case "$state" in
    running)
      if is_dockerd_pid "$pid" && grep -qx "$pid" <<<"$(main_dockerd_pids)"; then
        echo running
      else
        echo "foreign:marker PID $pid is not a running dockerd"
      fi
      ;;
    stopped)
      if [ -n "$(main_dockerd_pids)" ]; then
        echo "foreign:project's engine was stopped and another dockerd ($(main_dockerd_pids | tr '\n' ' '| sed 's/ $//')) runs now"
      elif docker_answers "unix://$sock"; then
        echo "foreign:project's engine was stopped and something else answers on unix://$sock"
      else
        echo stopped
      fi
      ;;
    *) echo "foreign:marker has unknown STATE=$state" ;;
  esac
}

do_stop() {
  local st
  st="$(project_state)"
  case "$st" in
    running)
      local pid sock
      pid="$(marker_get PID)"
      sock="$(marker_get SOCKET)"
      stop_dockerd "$pid" "$sock"
      write_marker stopped "$pid" "$sock"
      ;;
    stopped) log "project's engine already stopped" ;;
    foreign:*) refuse "${st#foreign:}" ;;
  esac
}

do_start() {
  local st sock
  st="$(project_state)"
  sock="$(marker_get SOCKET)"
  case "$st" in
    running)
      log "project's engine already running (pid $(marker_get PID))"
      ;;
    stopped)
      start_dockerd "$sock"
      ;;
    foreign:*) refuse "${st#foreign:}" ;;
  esac
}

do_restart() {
  do_stop
  do_start
}

do_status() {
  local st
  st="$(project_state)"
  case "$st" in
    running)
      log "running: dockerd pid $(marker_get PID), unix://$(marker_get SOCKET), version $(docker_server_version "unix://$(marker_get SOCKET)")"
      echo running
      ;;
    stopped)
      log "stopped (project's engine; start it with: $0 start)"
      echo stopped
      exit 2
      ;;
    foreign:*)
      log "engine not started by the project's scripts (${st#foreign:})"
      echo foreign
      exit 3
      ;;
  esac
}

[ $# -eq 1 ] || usage
case "$1" in
  status) do_status ;;
  stop)
    need_root
    with_engine_lock do_stop
    ;;
  start)
    need_root
    with_engine_lock do_start
    ;;
  restart)
    need_root
    with_engine_lock do_restart
    ;;
  *) usage ;;
esac
