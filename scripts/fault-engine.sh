#!/usr/bin/env bash
# A SECOND, project-owned Docker engine for the fault tests (engine down, engine
# restarted, ...). The main engine is shared and never stopped by tests; this one
# exists only for them, so stopping or restarting it disturbs nobody.
#
# Usage: scripts/fault-engine.sh start|down|stop|restart|status|purge
#
#   start    start the fault engine (if not running), wait until it answers and
#            make sure the busybox image is on it (docker save | docker load
#            from the main engine, else built from the host's static busybox).
#            Takes the lease for CONTAINER_POOL_FAULT_LEASE_PID (default: the
#            caller's parent pid); exits 4 when another live process holds it.
#   stop     remove every container of the fault engine, stop it (SIGTERM), wait
#            until its process and its containerd are gone, unmount anything
#            left under its roots, remove its empty cgroups, release the lease.
#   down     stop the daemon as `stop` does, but keep the lease (an engine
#            outage in the middle of a test run; `start` brings it back).
#   restart  stop the daemon and start it again (lease and image kept).
#   status   exit 0 and print `running` when it answers, else exit 2 `stopped`.
#   purge    stop, then delete its data root (the image cache) too.
#
# stdout of start/restart: `DOCKER_HOST=unix://<socket>` and
# `FAULT_IMAGE=<image>`; logs go to stderr. Exit 3: cannot run here (not root,
# no dockerd binary) with the reason on stderr.
#
# Coexistence with the main engine (dockerd 20.10): its own socket, pid file,
# data root, exec root (so its own managed containerd, state and shims), its own
# containerd namespaces, cgroup parent /container-pool-fault, and no network
# setup at all (--bridge=none, no iptables, no masquerading, no userland proxy):
# the main engine's docker0 and iptables rules are never touched.
#
# Env: CONTAINER_POOL_FAULT_ROOT (/run/container-pool-fault),
#      CONTAINER_POOL_FAULT_DATA_ROOT (/var/lib/container-pool-fault),
#      CONTAINER_POOL_FAULT_LOG (/var/log/container-pool-fault-dockerd.log),
#      CONTAINER_POOL_FAULT_IMAGE (container-pool-busybox:latest).
set -euo pipefail
CP_SCRIPT_NAME=fault-engine
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

F_ROOT="${CONTAINER_POOL_FAULT_ROOT:-/run/container-pool-fault}"
F_DATA="${CONTAINER_POOL_FAULT_DATA_ROOT:-/var/lib/container-pool-fault}"
F_EXEC="$F_ROOT/exec"
F_SOCK="$F_ROOT/docker.sock"
F_PIDFILE="$F_ROOT/dockerd.pid"
F_LEASE="$F_ROOT/lease"
F_LOCK="/run/container-pool-fault.lock"
F_LOG="${CONTAINER_POOL_FAULT_LOG:-/var/log/container-pool-fault-dockerd.log}"
F_IMAGE="${CONTAINER_POOL_FAULT_IMAGE:-container-pool-busybox:latest}"
F_CGROUP_PARENT=container-pool-fault
F_NS=container-pool-fault
F_HOST="unix://$F_SOCK"

cannot() {
  log "cannot run the fault engine here: $*"
  exit 3
}

fdocker() { timeout 60 docker -H "$F_HOST" "$@"; }

daemon_pid() {
  local pid
  pid="$(cat "$F_PIDFILE" 2>/dev/null || true)"
  is_dockerd_pid "$pid" && echo "$pid"
  return 0
}

# The containerd that our dockerd started (its config lives under our exec root).
containerd_pids() { pgrep -f "containerd --config $F_EXEC/containerd/containerd.toml" 2>/dev/null || true; }

answers() { docker_answers "$F_HOST"; }

preflight() {
  [ "$(id -u)" -eq 0 ] || cannot "not root (a second dockerd needs root)"
  command -v dockerd >/dev/null 2>&1 || cannot "no dockerd binary on PATH"
  command -v docker >/dev/null 2>&1 || cannot "no docker CLI on PATH"
  command -v containerd >/dev/null 2>&1 || cannot "no containerd binary on PATH"
}

lease_holder() {
  local pid
  pid="$(cat "$F_LEASE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] && [ -d "/proc/$pid" ] && echo "$pid"
  return 0
}

take_lease() {
  local me="${CONTAINER_POOL_FAULT_LEASE_PID:-$PPID}" holder
  holder="$(lease_holder)"
  if [ -n "$holder" ] && [ "$holder" != "$me" ]; then
    log "the fault engine is in use by pid $holder ($(tr '\0' ' ' <"/proc/$holder/cmdline" 2>/dev/null | cut -c1-120))"
    exit 4
  fi
  mkdir -p "$F_ROOT"
  echo "$me" >"$F_LEASE"
}

start_daemon() {
  if answers; then return 0; fi
  local stale
  stale="$(daemon_pid)"
  [ -z "$stale" ] || die "fault dockerd pid $stale runs but does not answer on $F_HOST; run: $0 stop"
  mkdir -p "$F_ROOT" "$F_EXEC" "$F_DATA" "$(dirname "$F_LOG")"
  if [ -f "$F_LOG" ] && [ "$(stat -c %s "$F_LOG")" -gt $((20 * 1024 * 1024)) ]; then
    mv -f "$F_LOG" "${F_LOG}.1"
  fi
  local -a args=(
    --host "$F_HOST"
    --pidfile "$F_PIDFILE"
    --data-root "$F_DATA"
    --exec-root "$F_EXEC"
    --containerd-namespace "$F_NS"
    --containerd-plugins-namespace "${F_NS}-plugins"
    --cgroup-parent "/$F_CGROUP_PARENT"
    --bridge none
    --iptables=false
    --ip6tables=false
    --ip-masq=false
    --userland-proxy=false
    --storage-driver "${CONTAINER_POOL_STORAGE_DRIVER:-overlay2}"
    --config-file "$F_ROOT/daemon.json"
  )
  # The main engine's /etc/docker/daemon.json must not shape this one.
  printf '{}\n' >"$F_ROOT/daemon.json"
  echo "===== $(date -u +%Y-%m-%dT%H:%M:%SZ) fault-engine: starting dockerd ${args[*]}" >>"$F_LOG"
  log "starting fault dockerd on $F_HOST (log: $F_LOG)"
  setsid nohup dockerd "${args[@]}" >>"$F_LOG" 2>&1 </dev/null 9>&- &
  local launcher=$! t0 deadline
  t0="$(now_s)"
  deadline=$((SECONDS + 60))
  until answers; do
    if ! kill -0 "$launcher" 2>/dev/null; then
      tail -n 30 "$F_LOG" >&2 || true
      die "fault dockerd exited during start-up (see $F_LOG)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 30 "$F_LOG" >&2 || true
      die "fault dockerd did not answer on $F_HOST within 60 s (pid $launcher; see $F_LOG)"
    fi
    sleep 0.2
  done
  log "fault dockerd answering on $F_HOST (pid $(daemon_pid)) after $(elapsed_s "$t0")s"
}

ensure_image() {
  if fdocker image inspect "$F_IMAGE" >/dev/null 2>&1; then return 0; fi
  if docker image inspect "$F_IMAGE" >/dev/null 2>&1; then
    log "loading $F_IMAGE from the main engine"
    docker save "$F_IMAGE" | fdocker load -q >&2
    return 0
  fi
  local bb
  bb="$(command -v busybox || true)"
  if [ -n "$bb" ] && ! ldd "$bb" >/dev/null 2>&1; then
    log "building $F_IMAGE on the fault engine from the host's static $bb"
    local dir
    dir="$(mktemp -d)"
    mkdir -p "$dir/bin" "$dir/tmp" "$dir/etc"
    cp "$bb" "$dir/bin/busybox"
    local applet
    for applet in $("$bb" --list); do
      [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
    tar -C "$dir" -c . | fdocker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - "$F_IMAGE" >&2
    rm -rf "$dir"
    return 0
  fi
  die "no $F_IMAGE on the main engine and no static busybox on the host to build it from (run scripts/build-sandbox-image.sh)"
}

# Unmount whatever is still mounted under our roots (deepest first).
unmount_leftovers() {
  local m
  for m in $(awk -v a="$F_ROOT" -v b="$F_DATA" \
    'index($2, a) == 1 || index($2, b) == 1 { print $2 }' /proc/self/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || warn "could not unmount $m"
  done
}

remove_cgroups() {
  local d
  for d in /sys/fs/cgroup/*/"$F_CGROUP_PARENT" /sys/fs/cgroup/"$F_CGROUP_PARENT"; do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

stop_daemon() {
  local pid
  if answers; then
    local ids
    ids="$(fdocker ps -aq 2>/dev/null || true)"
    if [ -n "$ids" ]; then
      # shellcheck disable=SC2086 # one id per word
      fdocker rm -f $ids >/dev/null 2>&1 || true
    fi
  fi
  pid="$(daemon_pid)"
  if [ -n "$pid" ]; then
    log "stopping fault dockerd pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 60))
    while is_dockerd_pid "$pid"; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        warn "fault dockerd pid $pid still alive after 60 s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
        break
      fi
      sleep 0.1
    done
  fi
  # Its containerd (and, after a SIGKILL, the shims) stop with it; make sure.
  local i
  for i in $(seq 1 50); do
    [ -n "$(containerd_pids)" ] || break
    # shellcheck disable=SC2046 # one pid per word
    [ "$i" -lt 30 ] || kill -TERM $(containerd_pids) 2>/dev/null || true
    sleep 0.1
  done
  local shims
  shims="$(pgrep -f "containerd-shim.* -namespace $F_NS( |$)" 2>/dev/null || true)"
  if [ -n "$shims" ]; then
    warn "shim(s) of the fault engine still running: $(echo "$shims" | tr '\n' ' '); killing them"
    # shellcheck disable=SC2086 # one pid per word
    kill -KILL $shims 2>/dev/null || true
  fi
  unmount_leftovers
  remove_cgroups
  rm -f "$F_SOCK" "$F_PIDFILE"
  if answers; then die "$F_HOST still answers after stop"; fi
}

print_env() {
  echo "DOCKER_HOST=$F_HOST"
  echo "FAULT_IMAGE=$F_IMAGE"
}

locked() {
  mkdir -p "$(dirname "$F_LOCK")"
  (
    flock -w 120 9 || die "could not take lock $F_LOCK"
    "$@"
  ) 9>"$F_LOCK"
}

do_start() {
  take_lease
  start_daemon
  ensure_image
  print_env
}

do_stop() {
  stop_daemon
  rm -f "$F_LEASE"
  log "fault engine stopped; nothing of it runs or stays mounted"
}

do_down() {
  stop_daemon
  log "fault engine down (lease kept)"
}

do_restart() {
  stop_daemon
  start_daemon
  ensure_image
  print_env
}

do_purge() {
  do_stop
  rm -rf "$F_DATA" "$F_ROOT"
  log "purged $F_DATA and $F_ROOT"
}

[ $# -eq 1 ] || {
  echo "usage: $0 start|down|stop|restart|status|purge" >&2
  exit 64
}
case "$1" in
  start)
    preflight
    locked do_start
    ;;
  stop)
    preflight
    locked do_stop
    ;;
  down)
    preflight
    locked do_down
    ;;
  restart)
    preflight
    locked do_restart
    ;;
  purge)
    preflight
    locked do_purge
    ;;
  status)
    if answers; then
      echo running
    else
      echo stopped
      exit 2
    fi
    ;;
  *)
    echo "usage: $0 start|down|stop|restart|status|purge" >&2
    exit 64
    ;;
esac
