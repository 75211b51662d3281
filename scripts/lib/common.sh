# shellcheck shell=bash
# Shared helpers for the container-pool scripts. Source it, do not run it.
#
#   CP_SCRIPT_NAME   prefix for every log line (defaults to the caller's basename)
#
# Logs go to stderr so that machine-readable lines (e.g. POOL_IMAGE=...) can
# be printed alone on stdout.

# shellcheck disable=SC2034 # used by the scripts that source this file
CP_SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CP_SCRIPT_NAME="${CP_SCRIPT_NAME:-$(basename "$0" .sh)}"

# Where the project keeps its run-time state about the engine it started.
CP_RUN_DIR="${CONTAINER_POOL_RUN_DIR:-/run/container-pool}"
CP_MARKER="${CP_RUN_DIR}/dockerd.started-by-project"
CP_LOCK="${CP_RUN_DIR}/engine.lock"
CP_DOCKERD_LOG="${CONTAINER_POOL_DOCKERD_LOG:-/var/log/container-pool-dockerd.log}"
CP_DOCKERD_PIDFILE="${CONTAINER_POOL_DOCKERD_PIDFILE:-/var/run/docker.pid}"
CP_DOCKERD_START_TIMEOUT="${CONTAINER_POOL_DOCKERD_START_TIMEOUT:-60}"
CP_DOCKERD_STOP_TIMEOUT="${CONTAINER_POOL_DOCKERD_STOP_TIMEOUT:-90}"

log() { printf '[%s] %s\n' "$CP_SCRIPT_NAME" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "$CP_SCRIPT_NAME" "$*" >&2; }
die() {
  printf '[%s] ERROR: %s\n' "$CP_SCRIPT_NAME" "$*" >&2
  exit 1
}

need_root() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (it may install packages / start dockerd)"
}

# Seconds since the epoch with a fraction, for timings.
now_s() { date +%s.%N; }
elapsed_s() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }

# apt_install PKG... : install Debian packages non-interactively, running
# `apt-get update` first (once per script run). Services the packages ship
# are NOT started (a temporary policy-rc.d is used when none exists), so that
# e.g. installing docker.io never starts an engine behind our back.
_CP_APT_UPDATED=""
apt_install() {
  need_root
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
  export DEBIAN_FRONTEND=noninteractive
  local policy=/usr/sbin/policy-rc.d created_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from container-pool scripts\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
  fi
  local rc=0 aptlog
  aptlog="$(mktemp "${TMPDIR:-/tmp}/container-pool-apt.XXXXXX")"
  # needrestart (if installed) must neither prompt nor restart services.
  export NEEDRESTART_SUSPEND=1 NEEDRESTART_MODE=l
  if [ -z "$_CP_APT_UPDATED" ]; then
    log "apt-get update"
    apt-get -o DPkg::Lock::Timeout=300 update -qq >>"$aptlog" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] && _CP_APT_UPDATED=1
  fi
  if [ "$rc" -eq 0 ]; then
    log "apt-get install $*"
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >>"$aptlog" 2>&1 || rc=$?
  fi
  if [ -n "$created_policy" ]; then rm -f "$policy"; fi
  if [ "$rc" -ne 0 ]; then
    log "---- last lines of apt-get's output ----"
    tail -n 30 "$aptlog" >&2 || true
    rm -f "$aptlog"
    die "apt-get failed (exit $rc) while installing: $*"
  fi
  rm -f "$aptlog"
}

# ---------------------------------------------------------------------------
# Docker engine helpers
# ---------------------------------------------------------------------------

# The socket the project's engine listens on: taken from DOCKER_HOST when it is
# a unix:// address, else Docker's default.
engine_socket() {
  local h="${DOCKER_HOST:-}"
  case "$h" in
    "") echo /var/run/docker.sock ;;
    unix://*) echo "${h#unix://}" ;;
    *) return 1 ;;
  esac
}

# docker_answers [HOST]: true when `docker info` answers (HOST: -H value,
# default = whatever the docker CLI uses, i.e. DOCKER_HOST/context).
docker_answers() {
  if [ -n "${1:-}" ]; then
    timeout 15 docker -H "$1" info --format '{{.ServerVersion}}' >/dev/null 2>&1
  else
    timeout 15 docker info --format '{{.ServerVersion}}' >/dev/null 2>&1
  fi
}

docker_server_version() {
  if [ -n "${1:-}" ]; then
    timeout 15 docker -H "$1" version --format '{{.Server.Version}}' 2>/dev/null
  else
    timeout 15 docker version --format '{{.Server.Version}}' 2>/dev/null
  fi
}

# is_dockerd_pid PID: the PID is alive and is a dockerd process.
is_dockerd_pid() {
  local pid="${1:-}" exe
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -d "/proc/$pid" ] || return 1
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
  case "$exe" in
    */dockerd | */dockerd\ \(deleted\)) return 0 ;;
  esac
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]
}

# PIDs of every running dockerd (any owner, any socket).
dockerd_pids() { pgrep -x dockerd 2>/dev/null || true; }

# PIDs of the dockerds that are, or would collide with, the main engine: the one
# whose pid is in our pid file, and any dockerd started without --pidfile (it
# uses the same default /var/run/docker.pid, data root and exec root). A
# separate engine with its own --pidfile (e.g. scripts/fault-engine.sh) is not
# listed.
main_dockerd_pids() {
  local pid args filepid
  filepid="$(cat "$CP_DOCKERD_PIDFILE" 2>/dev/null || true)"
  for pid in $(dockerd_pids); do
    args=" $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true) "
    if [ "$pid" = "$filepid" ] ||
      [[ "$args" == *" --pidfile $CP_DOCKERD_PIDFILE "* || "$args" == *" --pidfile=$CP_DOCKERD_PIDFILE "* ]] ||
      [[ "$args" != *" --pidfile"* && "$args" != *" -p "* ]]; then
      echo "$pid"
    fi
  done
}

# marker_get KEY: value of KEY= in the marker file (empty when absent).
marker_get() {
  [ -f "$CP_MARKER" ] || return 0
  sed -n "s/^$1=//p" "$CP_MARKER" | tail -n 1
}

# write_marker STATE PID SOCKET
write_marker() {
  mkdir -p "$CP_RUN_DIR"
  local tmp="${CP_MARKER}.tmp.$$"
  {
    echo "# Written by container-pool scripts/${CP_SCRIPT_NAME}.sh: this dockerd was started by"
    echo "# the project's own scripts, so tests may stop/restart it (scripts/engine-control.sh)."
    echo "STATE=$1"
    echo "PID=$2"
    echo "SOCKET=$3"
    echo "DOCKER_HOST=unix://$3"
    echo "PIDFILE=$CP_DOCKERD_PIDFILE"
    echo "LOG=$CP_DOCKERD_LOG"
    echo "UPDATED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "UPDATED_BY=${CP_SCRIPT_NAME}"
  } >"$tmp"
  mv -f "$tmp" "$CP_MARKER"
}

# The dockerd flags used by every start (ensure-docker and engine-control).
# No live-restore (Docker's default): containers must die with the engine.
dockerd_args() {
  local sock="$1" cfg=/etc/docker/daemon.json
  local -a args=(--host "unix://$sock" --pidfile "$CP_DOCKERD_PIDFILE")
  if ! { [ -f "$cfg" ] && grep -q '"storage-driver"' "$cfg"; }; then
    args+=(--storage-driver "${CONTAINER_POOL_STORAGE_DRIVER:-overlay2}")
  fi
  if [ -n "${CONTAINER_POOL_DOCKERD_ARGS:-}" ]; then
    # shellcheck disable=SC2206 # word splitting wanted for extra flags
    args+=(${CONTAINER_POOL_DOCKERD_ARGS})
  fi
  printf '%s\n' "${args[@]}"
}

# start_dockerd SOCKET: start dockerd in the background, wait until it answers,
# write the marker. Dies with the tail of the log on failure.
start_dockerd() {
  local sock="$1" cfg=/etc/docker/daemon.json
  need_root
  command -v dockerd >/dev/null 2>&1 || die "dockerd not installed"
  if [ -f "$cfg" ] && grep -Eq '"live-restore"[[:space:]]*:[[:space:]]*true' "$cfg"; then
    die "$cfg enables live-restore; the project needs containers to die with the engine. Remove it."
  fi
  mkdir -p "$CP_RUN_DIR" "$(dirname "$CP_DOCKERD_LOG")" "$(dirname "$sock")"
  # Keep the log from growing without bound.
  if [ -f "$CP_DOCKERD_LOG" ] && [ "$(stat -c %s "$CP_DOCKERD_LOG")" -gt $((20 * 1024 * 1024)) ]; then
    mv -f "$CP_DOCKERD_LOG" "${CP_DOCKERD_LOG}.1"
  fi
  local -a args
  mapfile -t args < <(dockerd_args "$sock")
  {
    echo "===== $(date -u +%Y-%m-%dT%H:%M:%SZ) ${CP_SCRIPT_NAME}: starting dockerd ${args[*]}"
  } >>"$CP_DOCKERD_LOG"
  log "starting dockerd ${args[*]} (log: $CP_DOCKERD_LOG)"
  # setsid: own session, so it survives the calling shell/terminal; stdin closed;
  # fd 9 (the engine lock, see with_engine_lock) closed so dockerd never holds it.
  setsid nohup dockerd "${args[@]}" >>"$CP_DOCKERD_LOG" 2>&1 </dev/null 9>&- &
  local launcher=$! pid="" t0 deadline
  t0="$(now_s)"
  deadline=$((SECONDS + CP_DOCKERD_START_TIMEOUT))
  while :; do
    if docker_answers "unix://$sock"; then break; fi
    if ! kill -0 "$launcher" 2>/dev/null; then
      pid="$(cat "$CP_DOCKERD_PIDFILE" 2>/dev/null || true)"
      if ! is_dockerd_pid "$pid"; then
        log "---- last lines of $CP_DOCKERD_LOG ----"
        tail -n 40 "$CP_DOCKERD_LOG" >&2 || true
        die "dockerd exited during start-up (see $CP_DOCKERD_LOG)"
      fi
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "---- last lines of $CP_DOCKERD_LOG ----"
      tail -n 40 "$CP_DOCKERD_LOG" >&2 || true
      die "dockerd did not answer on unix://$sock within ${CP_DOCKERD_START_TIMEOUT}s (still running as pid $launcher; see $CP_DOCKERD_LOG)"
    fi
    sleep 0.5
  done
  pid="$(cat "$CP_DOCKERD_PIDFILE" 2>/dev/null || true)"
  is_dockerd_pid "$pid" || pid="$launcher"
  write_marker running "$pid" "$sock"
  log "dockerd $(docker_server_version "unix://$sock") answering on unix://$sock (pid $pid) after $(elapsed_s "$t0")s; marker $CP_MARKER"
}

# stop_dockerd PID SOCKET: SIGTERM, wait until the socket stops answering and
# the process (and the containerd it spawned) are gone.
stop_dockerd() {
  local pid="$1" sock="$2" t0 deadline
  t0="$(now_s)"
  log "stopping dockerd pid $pid (SIGTERM)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + CP_DOCKERD_STOP_TIMEOUT))
  while is_dockerd_pid "$pid" || docker_answers "unix://$sock"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      warn "dockerd pid $pid still alive after ${CP_DOCKERD_STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.5
  done
  # dockerd stops the containerd it started itself; give it a moment.
  local _
  for _ in $(seq 1 20); do
    pgrep -f 'containerd --config /var/run/docker/containerd/containerd.toml' >/dev/null 2>&1 || break
    sleep 0.5
  done
  if docker_answers "unix://$sock"; then
    die "unix://$sock still answers after stopping pid $pid (another engine?)"
  fi
  log "dockerd stopped after $(elapsed_s "$t0")s"
}

# with_engine_lock CMD...: run CMD while holding the engine lock (serialises
# concurrent ensure-docker / engine-control runs).
with_engine_lock() {
  mkdir -p "$CP_RUN_DIR"
  (
    flock -w 300 9 || die "could not take lock $CP_LOCK"
    "$@"
  ) 9>"$CP_LOCK"
}

# Node.js 20.19+ and the project's npm packages (npm ci from the lockfile when any of the given modules is
# missing). Usage: ensure_node_packages [module ...]   (default: jest @nestjs/core)
ensure_node_packages() {
  if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' 2>/dev/null; then
    die "Node.js 20.19 or newer is needed (found: $(node --version 2>/dev/null || echo none))"
  fi
  local mods=("$@") m missing=""
  [ ${#mods[@]} -gt 0 ] || mods=(jest @nestjs/core)
  for m in "${mods[@]}"; do
    node -e "require.resolve('$m')" 2>/dev/null || missing=1
  done
  if [ ! -d "$CP_SCRIPTS_DIR/../node_modules" ] || [ -n "$missing" ]; then
    log "installing npm packages (npm ci)"
    (cd "$CP_SCRIPTS_DIR/.." && npm ci --no-audit --no-fund)
  fi
}

# datascience_profile_wanted SWITCH PROFILES NAME: whether the runnable service will have its datascience profile,
# decided as src/cli/service-profiles.ts decides it (CONTAINER_POOL_DATASCIENCE, POOL_PROFILES, POOL_NAME): not
# with the switch 0, false or no (any case, blanks around), nor with a switch it refuses (the service does not
# start), nor when POOL_PROFILES names the profiles, nor with a POOL_NAME that cannot name a profile beside it.
datascience_profile_wanted() {
  local LC_ALL=C switch profiles name
  switch="$(_cp_trim "$1" | tr '[:upper:]' '[:lower:]')"
  profiles="$(_cp_trim "$2")"
  name="$(_cp_trim "$3")"
  name="${name:-default}"
  case "$switch" in "" | 1 | true | yes) ;; *) return 1 ;; esac
  [ -z "$profiles" ] || return 1
  [[ "$name" =~ ^[a-z][a-z0-9-]{0,30}$ ]] && [ "$name" != datascience ]
}

# _cp_trim TEXT: TEXT without the blanks (spaces, tabs, newlines) around it.
_cp_trim() {
  local s="$1"
  s="${s#"${s%%[![:space:]]*}"}"
  printf '%s' "${s%"${s##*[![:space:]]}"}"
}
