#!/usr/bin/env bash
# Build the project's offline sandbox images locally, with no container
# registry: Debian packages only (mmdebstrap / busybox-static) + `docker import`.
#
# Usage: scripts/build-sandbox-image.sh [--force] [all|sandbox|busybox|datascience]
#
#   sandbox  $SANDBOX_IMAGE (default container-pool-sandbox:bookworm):
#            mmdebstrap --variant=essential --include=python3,procps,tar <suite>
#            (tar is Essential in Debian; named so that it stays: the files API needs it)
#            using the host's own apt mirror(s) and proxy settings.
#   busybox  $BUSYBOX_IMAGE (default container-pool-busybox:latest): Debian's
#            static busybox + applet symlinks + /etc/passwd,group (root, nobody).
#   datascience
#            $DATASCIENCE_IMAGE (default container-pool-datascience:bookworm):
#            mmdebstrap --variant=essential --include=$DATASCIENCE_INCLUDE (python3,
#            python3-numpy, python3-pandas, python3-matplotlib, python3-munkres,
#            fonts-dejavu-core, procps, tar), ~520 MB, ~70 s from scratch; matplotlib's
#            font cache is built into the image at /usr/local/share/matplotlib-cache
#            (fontlist-v330.json, root-owned, read-only). matplotlib uses a cache dir
#            only when it can write to it, so a sandbox copies that file into a
#            writable MPLCONFIGDIR (e.g. on the /tmp tmpfs) before importing it, with
#            MPLBACKEND=Agg; the dir is also in the image label
#            container-pool.matplotlib.cache.
#   all      sandbox, busybox and datascience (default).
#
# An image that already exists is kept (fast no-op) unless --force.
# Every image is smoke-tested in a hardened container after the import; a
# failing image is removed again. Needs a Docker engine: in the repository,
# scripts/ensure-docker.sh starts one when none answers; the copy shipped in
# the npm package (`npx container-pool image build`) only checks that one does.
#
# Env: SANDBOX_IMAGE, BUSYBOX_IMAGE, SANDBOX_SUITE (bookworm),
#      SANDBOX_INCLUDE (python3,procps,tar), DATASCIENCE_IMAGE, DATASCIENCE_INCLUDE,
#      SANDBOX_MIRROR (override the mirror
#      list given to mmdebstrap: one or more mmdebstrap MIRROR arguments
#      separated by '|'), TMPDIR.
set -euo pipefail
CP_SCRIPT_NAME=build-sandbox-image
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

SANDBOX_IMAGE="${SANDBOX_IMAGE:-container-pool-sandbox:bookworm}"
BUSYBOX_IMAGE="${BUSYBOX_IMAGE:-container-pool-busybox:latest}"
SANDBOX_SUITE="${SANDBOX_SUITE:-bookworm}"
SANDBOX_INCLUDE="${SANDBOX_INCLUDE:-python3,procps,tar}"
DATASCIENCE_IMAGE="${DATASCIENCE_IMAGE:-container-pool-datascience:bookworm}"
DATASCIENCE_INCLUDE="${DATASCIENCE_INCLUDE:-python3,python3-numpy,python3-pandas,python3-matplotlib,python3-munkres,fonts-dejavu-core,procps,tar}"
# matplotlib's font cache in the data-science image (see build_datascience).
MPL_CACHE_DIR=/usr/local/share/matplotlib-cache
IMAGE_PATH_ENV='PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

FORCE=""
WHAT=all
for a in "$@"; do
  case "$a" in
    --force | -f) FORCE=1 ;;
    all | sandbox | busybox | datascience) WHAT="$a" ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument: $a (usage: $0 [--force] [all|sandbox|busybox|datascience])" ;;
  esac
done

# Never shadow upstream images: the pool must know when it runs our build.
check_tag() {
  local ref="${1#docker.io/}"
  ref="${ref#library/}"
  case "$ref" in
    python:* | busybox:* | python | busybox) die "refusing to tag a local build as '$1' (reserved for the real upstream image)" ;;
  esac
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

# After a --force rebuild: drop the previous image if nothing else uses it.
drop_replaced_image() {
  local old="$1" new
  new="$(image_id "$2")"
  [ -n "$old" ] && [ "$old" != "$new" ] || return 0
  if [ -z "$(docker image inspect --format '{{join .RepoTags ","}}' "$old" 2>/dev/null)" ]; then
    if docker image rm "$old" >/dev/null 2>&1; then log "removed replaced image ${old#sha256:}"; fi
  fi
}

image_size() { docker image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.1f MB", $1 / 1000 / 1000 }'; }

WORK=""
cleanup() {
  if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
# Sets WORK (call it directly, not in $(...)).
ensure_workdir() {
  if [ -z "$WORK" ]; then
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/container-pool-build.XXXXXX")"
  fi
}

# Run a command in the hardened configuration the pool uses.
hardened_run() {
  local image="$1"
  shift
  docker run --rm --label container-pool.test=scripts \
    --network none --user 65534:65534 --read-only \
    --tmpfs /tmp:rw,nosuid,nodev,size=64m,mode=1777 \
    --cap-drop ALL --security-opt no-new-privileges:true --init \
    "$image" "$@"
}

# smoke_test IMAGE CMD...: run it hardened; on failure remove the image.
smoke_test() {
  local image="$1" out
  shift
  if ! out="$(hardened_run "$image" "$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    docker image rm "$image" >/dev/null 2>&1 || true
    die "smoke test of $image failed; image removed"
  fi
  printf '%s\n' "$out" | sed "s/^/[$CP_SCRIPT_NAME]   | /" >&2
}

# ---------------------------------------------------------------------------
# Mirror / proxy handling: reproduce what apt-get does on this host.
# ---------------------------------------------------------------------------

# One-line sources ("deb URI SUITE COMPONENTS") for SUITE and SUITE-* (updates,
# security, backports...) from the host's apt configuration: `apt-get
# indextargets` sees exactly the sources apt uses (sources.list, .list and
# deb822 .sources files, disabled files excluded) but only once `apt-get update`
# has fetched their indexes.
host_mirror_lines() {
  apt-get indextargets --format '$(TARGET_OF) $(REPO_URI) $(RELEASE) $(COMPONENT)' 2>/dev/null |
    awk -v suite="$SANDBOX_SUITE" '
      $1 == "deb" && ($3 == suite || index($3, suite "-") == 1) {
        key = $2 " " $3
        if (!(key in comps)) { order[++n] = key; comps[key] = $4 }
        else if (index(" " comps[key] " ", " " $4 " ") == 0) comps[key] = comps[key] " " $4
      }
      END { for (i = 1; i <= n; i++) { split(order[i], kv, " "); print "deb " kv[1] " " kv[2] " " comps[order[i]] } }'
}

# apt options of the host that must also apply to mmdebstrap's apt, which does
# not read /etc/apt/apt.conf*: proxies, Valid-Until/Date checks (snapshot-like
# mirrors), retries, TLS settings. Printed as apt.conf lines.
host_apt_options() {
  apt-config dump 2>/dev/null |
    grep -E '^Acquire::(Check-Valid-Until|Check-Date|Retries|ForceIPv4|ForceIPv6|(http|https|ftp|socks)::)' || true
}

# debian_rootfs INCLUDE TAR [MMDEBSTRAP_ARG...]: `mmdebstrap --variant=essential --include=INCLUDE` of
# $SANDBOX_SUITE into the tarball TAR, with the host's mirrors, apt options and proxy; the extra arguments (e.g.
# more --customize-hook) go to mmdebstrap after the common ones. Checks the rootfs has nobody and python3.
debian_rootfs() {
  local include="$1" tar="$2"
  shift 2
  command -v mmdebstrap >/dev/null 2>&1 || apt_install mmdebstrap
  [ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || apt_install debian-archive-keyring

  local -a mirrors=() aptopts=()
  local line
  if [ -n "${SANDBOX_MIRROR:-}" ]; then
    IFS='|' read -r -a mirrors <<<"$SANDBOX_MIRROR"
    log "mirrors from SANDBOX_MIRROR: ${mirrors[*]}"
  else
    mapfile -t mirrors < <(host_mirror_lines)
    if [ "${#mirrors[@]}" -eq 0 ]; then
      # indextargets lists nothing before the first `apt-get update`.
      need_root
      log "apt has no index for $SANDBOX_SUITE yet: apt-get update"
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || warn "apt-get update failed"
      mapfile -t mirrors < <(host_mirror_lines)
    fi
    if [ "${#mirrors[@]}" -eq 0 ]; then
      warn "host apt has no source for suite $SANDBOX_SUITE; using mmdebstrap's default (deb.debian.org + updates + security)"
    else
      for line in "${mirrors[@]}"; do log "mirror (from host apt): $line"; done
    fi
  fi
  mapfile -t aptopts < <(host_apt_options)
  for line in "${aptopts[@]}"; do log "apt option (from host apt): $line"; done
  local v
  for v in http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy; do
    [ -n "${!v:-}" ] && log "proxy from environment (inherited by mmdebstrap's apt): $v=${!v}"
  done

  local -a args=(
    --variant=essential
    --include="$include"
    --format=tar
    # Keep the image small: no docs/man/locales (copyright files kept).
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    # Host apt options/proxy are for the build only: not kept in the image.
    --customize-hook='rm -f "$1/etc/apt/apt.conf.d/99mmdebstrap"'
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*.log "$1"/var/cache/debconf/*-old'
    --customize-hook='mkdir -p "$1/tmp" "$1/var/tmp" && chmod 1777 "$1/tmp" "$1/var/tmp"'
    "$@"
  )
  for line in "${aptopts[@]}"; do args+=(--aptopt="$line"); done
  # merged-/usr the debootstrap way (as debian:bookworm): installs usr-is-merged
  # instead of usrmerge, which would drag perl (~50 MB) into the image.
  if [ -d /usr/share/mmdebstrap/hooks/merged-usr ]; then
    args+=(--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr)
  fi
  if [ -f /etc/apt/auth.conf ] || [ -n "$(ls -A /etc/apt/auth.conf.d 2>/dev/null)" ]; then
    log "host has apt credentials (auth.conf); passing them to mmdebstrap's apt"
    args+=(--aptopt='Dir::Etc::netrc "/etc/apt/auth.conf"' --aptopt='Dir::Etc::netrcparts "/etc/apt/auth.conf.d"')
  fi

  log "mmdebstrap $SANDBOX_SUITE ($include) -> $tar"
  local tm
  tm="$(now_s)"
  if ! mmdebstrap --quiet "${args[@]}" "$SANDBOX_SUITE" "$tar" "${mirrors[@]}" >"$tar.log" 2>&1; then
    log "---- last lines of mmdebstrap's output ----"
    tail -n 40 "$tar.log" >&2
    die "mmdebstrap failed"
  fi
  log "mmdebstrap done in $(elapsed_s "$tm")s ($(du -h "$tar" | cut -f1) tar)"

  # Sanity checks on the rootfs before importing it.
  local passwd
  passwd="$(tar -xOf "$tar" ./etc/passwd)"
  grep -Eq '^nobody:[^:]*:65534:65534:' <<<"$passwd" || die "rootfs has no 'nobody' (65534:65534) in /etc/passwd"
  tar -tf "$tar" >"$tar.list"
  grep -Eq '^\./usr/bin/python3$' "$tar.list" || die "rootfs has no /usr/bin/python3"
}

build_sandbox() {
  check_tag "$SANDBOX_IMAGE"
  if [ -z "$FORCE" ] && image_exists "$SANDBOX_IMAGE"; then
    log "$SANDBOX_IMAGE exists ($(image_size "$SANDBOX_IMAGE")); skipping (use --force to rebuild)"
    return 0
  fi
  local t0 tar
  t0="$(now_s)"
  ensure_workdir
  tar="$WORK/sandbox-rootfs.tar"
  debian_rootfs "$SANDBOX_INCLUDE" "$tar"

  local created old_id
  old_id="$(image_id "$SANDBOX_IMAGE")"
  created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  docker import \
    --change 'CMD ["/bin/sh"]' \
    --change "ENV $IMAGE_PATH_ENV" \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
    --change 'WORKDIR /' \
    --change 'LABEL org.opencontainers.image.title="container-pool-sandbox"' \
    --change "LABEL org.opencontainers.image.description=\"Debian $SANDBOX_SUITE ($SANDBOX_INCLUDE), mmdebstrap variant essential, built offline for container-pool\"" \
    --change "LABEL org.opencontainers.image.version=\"$SANDBOX_SUITE\"" \
    --change "LABEL org.opencontainers.image.created=\"$created\"" \
    --change 'LABEL org.opencontainers.image.base.name="debian (mmdebstrap)"' \
    --change 'LABEL container-pool.image.kind="sandbox"' \
    --change 'LABEL container-pool.image.builder="scripts/build-sandbox-image.sh"' \
    --message "container-pool sandbox: mmdebstrap $SANDBOX_SUITE $SANDBOX_INCLUDE" \
    "$tar" "$SANDBOX_IMAGE" >/dev/null
  rm -f "$tar"

  log "smoke test of $SANDBOX_IMAGE (hardened run)"
  smoke_test "$SANDBOX_IMAGE" sh -c '
set -e
test "$(id -u):$(id -g)" = "65534:65534"
test "$(echo hello | cat)" = hello
rc=0; timeout 1 sleep 5 || rc=$?; test "$rc" = 124
ps -o pid,user,comm >/dev/null
# The files helper: tar both ways, realpath, find + stat, mktemp, as the sandbox user.
mkdir /tmp/f && printf x >/tmp/f/a && tar -c -f - -C /tmp/f ./a | tar -x -f - -C "$(mktemp -d /tmp/t.XXXXXX)"
test "$(realpath /tmp/f/a)" = /tmp/f/a && find /tmp/f -mindepth 1 -type f -exec stat -c "%f %s %n" {} + >/dev/null
python3 - <<"EOF"
import ctypes, json, multiprocessing, os, subprocess, sys
libc = ctypes.CDLL("libc.so.6")
assert libc.getpid() == os.getpid()
with multiprocessing.Pool(2) as pool:
    assert pool.map(abs, [-1, -2]) == [1, 2]
out = subprocess.run(["timeout", "1", "cat"], input=b"x", capture_output=True, check=True).stdout
assert out == b"x"
print(json.dumps({"ok": True, "python": sys.version.split()[0], "uid": os.getuid()}))
EOF'
  drop_replaced_image "$old_id" "$SANDBOX_IMAGE"
  log "built $SANDBOX_IMAGE in $(elapsed_s "$t0")s, size $(image_size "$SANDBOX_IMAGE")"
}

# The data-science image: the sandbox's packages plus numpy, pandas and matplotlib from Debian, and matplotlib's
# font cache made at build time in $MPL_CACHE_DIR (root-owned, read-only for the sandbox user).
build_datascience() {
  check_tag "$DATASCIENCE_IMAGE"
  if [ -z "$FORCE" ] && image_exists "$DATASCIENCE_IMAGE"; then
    log "$DATASCIENCE_IMAGE exists ($(image_size "$DATASCIENCE_IMAGE")); skipping (use --force to rebuild)"
    return 0
  fi
  local t0 tar fontcache
  t0="$(now_s)"
  ensure_workdir
  tar="$WORK/datascience-rootfs.tar"
  # Build the font cache in the rootfs: matplotlib writes fontlist-v*.json into MPLCONFIGDIR (its cache dir) on
  # its first import. No byte code is written; a bare environment, so nothing of the build host leaks in.
  fontcache="mkdir -p \"\$1$MPL_CACHE_DIR\" && chroot \"\$1\" env -i '$IMAGE_PATH_ENV' LANG=C.UTF-8 HOME=/nonexistent"
  fontcache+=" MPLCONFIGDIR='$MPL_CACHE_DIR' MPLBACKEND=Agg PYTHONDONTWRITEBYTECODE=1"
  fontcache+=" python3 -c 'import matplotlib.font_manager as fm; print(len(fm.fontManager.ttflist), \"fonts\")'"
  fontcache+=" && chmod -R u=rwX,go=rX \"\$1$MPL_CACHE_DIR\" && ls -l \"\$1$MPL_CACHE_DIR\""
  # mmdebstrap installs no Recommends. python3-munkres is named so that apt takes it for python3-fonttools'
  # "python3-scipy | python3-munkres" (matplotlib needs fonttools): scipy would bring pythran, gcc, g++, boost,
  # openblas-dev and python3-dev, 1.1 GB in all. The font matplotlib falls back to, DejaVu Sans, is named too.
  debian_rootfs "$DATASCIENCE_INCLUDE" "$tar" --customize-hook="$fontcache"
  grep -Eq "^\\.$MPL_CACHE_DIR/fontlist-v[0-9]+\\.json\$" "$tar.list" || die "rootfs has no matplotlib font cache in $MPL_CACHE_DIR"

  local created old_id
  old_id="$(image_id "$DATASCIENCE_IMAGE")"
  created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  docker import \
    --change 'CMD ["/bin/sh"]' \
    --change "ENV $IMAGE_PATH_ENV" \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
    --change 'ENV MPLBACKEND=Agg' \
    --change 'WORKDIR /' \
    --change 'LABEL org.opencontainers.image.title="container-pool-datascience"' \
    --change "LABEL org.opencontainers.image.description=\"Debian $SANDBOX_SUITE ($DATASCIENCE_INCLUDE), mmdebstrap variant essential, matplotlib font cache in $MPL_CACHE_DIR, built offline for container-pool\"" \
    --change "LABEL org.opencontainers.image.version=\"$SANDBOX_SUITE\"" \
    --change "LABEL org.opencontainers.image.created=\"$created\"" \
    --change 'LABEL org.opencontainers.image.base.name="debian (mmdebstrap)"' \
    --change 'LABEL container-pool.image.kind="datascience"' \
    --change "LABEL container-pool.matplotlib.cache=\"$MPL_CACHE_DIR\"" \
    --change 'LABEL container-pool.image.builder="scripts/build-sandbox-image.sh"' \
    --message "container-pool datascience: mmdebstrap $SANDBOX_SUITE $DATASCIENCE_INCLUDE" \
    "$tar" "$DATASCIENCE_IMAGE" >/dev/null
  rm -f "$tar"

  # As the runner will: MPLCONFIGDIR must be a writable directory (matplotlib falls back to a new temporary one,
  # and rebuilds the font cache there, when it is not: the image's copy is read-only under --read-only), so the
  # baked cache is copied into one on the tmpfs; matplotlib must then load it, not rebuild it.
  log "smoke test of $DATASCIENCE_IMAGE (hardened run)"
  smoke_test "$DATASCIENCE_IMAGE" env MPL_CACHE_DIR="$MPL_CACHE_DIR" sh -c '
set -e
test "$(id -u):$(id -g)" = "65534:65534"
ps -o pid,user,comm >/dev/null
mkdir /tmp/f && printf x >/tmp/f/a && tar -c -f - -C /tmp/f ./a | tar -x -f - -C "$(mktemp -d /tmp/t.XXXXXX)"
test ! -w "$MPL_CACHE_DIR"
mkdir /tmp/mpl && cp "$MPL_CACHE_DIR"/fontlist-v*.json /tmp/mpl/
MPLCONFIGDIR=/tmp/mpl MPLBACKEND=Agg python3 - <<"EOF"
import hashlib, json, logging, os, sys, time
t0 = time.monotonic()
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
fm_log = logging.getLogger("matplotlib.font_manager")
fm_log.setLevel(logging.DEBUG)
fm_log.addHandler(Keep())
(cache,) = [os.path.join("/tmp/mpl", n) for n in os.listdir("/tmp/mpl")]
before = hashlib.sha256(open(cache, "rb").read()).hexdigest()
import numpy, pandas, matplotlib
import matplotlib.pyplot as plt
assert matplotlib.get_backend().lower() == "agg", matplotlib.get_backend()
assert matplotlib.get_cachedir() == "/tmp/mpl", matplotlib.get_cachedir()
df = pandas.DataFrame({"x": numpy.arange(3), "y": [1.0, 4.0, 2.0]})
df.plot(x="x", y="y")
plt.savefig("/tmp/x.png")
with open("/tmp/x.png", "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
assert any(m.startswith("Using fontManager instance from") for m in records), records
assert not any("generated new fontManager" in m or "building the font cache" in m for m in records), records
assert hashlib.sha256(open(cache, "rb").read()).hexdigest() == before
assert os.listdir("/tmp/mpl") == [os.path.basename(cache)], os.listdir("/tmp/mpl")
print(json.dumps({"ok": True, "python": sys.version.split()[0], "numpy": numpy.__version__,
    "pandas": pandas.__version__, "matplotlib": matplotlib.__version__, "fontcache": os.path.basename(cache),
    "s": round(time.monotonic() - t0, 2)}))
EOF'
  drop_replaced_image "$old_id" "$DATASCIENCE_IMAGE"
  log "built $DATASCIENCE_IMAGE in $(elapsed_s "$t0")s, size $(image_size "$DATASCIENCE_IMAGE")"
}

# Debian's static busybox: the installed one if it is static, else install
# busybox-static (it replaces the dynamic `busybox` package).
static_busybox() {
  local bb
  for bb in /bin/busybox /usr/bin/busybox; do
    if [ -x "$bb" ] && is_static "$bb"; then
      echo "$bb"
      return 0
    fi
  done
  apt_install busybox-static
  for bb in /bin/busybox /usr/bin/busybox; do
    if [ -x "$bb" ] && is_static "$bb"; then
      echo "$bb"
      return 0
    fi
  done
  die "no static busybox found after installing busybox-static"
}

# ldd (libc-bin, always on Debian) says so for a static ELF.
is_static() {
  local out
  out="$(LC_ALL=C ldd "$1" 2>&1 || true)"
  grep -Eq 'not a dynamic executable|statically linked' <<<"$out"
}

build_busybox() {
  check_tag "$BUSYBOX_IMAGE"
  if [ -z "$FORCE" ] && image_exists "$BUSYBOX_IMAGE"; then
    log "$BUSYBOX_IMAGE exists ($(image_size "$BUSYBOX_IMAGE")); skipping (use --force to rebuild)"
    return 0
  fi
  local t0 bb dir root
  t0="$(now_s)"
  bb="$(static_busybox)"
  ensure_workdir
  dir="$WORK"
  root="$dir/busybox-rootfs"
  rm -rf "$root"
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,home,tmp,var/tmp,proc,sys,dev}
  chmod 1777 "$root/tmp" "$root/var/tmp"
  chmod 700 "$root/root"
  install -m 0755 "$bb" "$root/bin/busybox"

  # One symlink per applet, where busybox wants it (bin/sh, usr/bin/head, ...).
  local applet n=0
  while IFS= read -r applet; do
    [ -n "$applet" ] || continue
    [ "$applet" = bin/busybox ] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -sf /bin/busybox "$root/$applet"
    n=$((n + 1))
  done < <("$root/bin/busybox" --list-full)
  for applet in sh cat echo timeout sleep yes head dd id ls ps tar realpath find stat mktemp mv chmod mkdir rm; do
    if [ ! -e "$root/bin/$applet" ] && [ ! -e "$root/usr/bin/$applet" ] &&
      [ ! -e "$root/sbin/$applet" ] && [ ! -e "$root/usr/sbin/$applet" ]; then
      case "$applet" in
        ps) warn "busybox has no '$applet' applet" ;;
        *) die "busybox has no '$applet' applet" ;;
      esac
    fi
  done

  cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
  cat >"$root/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nogroup:x:65534:
EOF
  printf 'root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n' >"$root/etc/shadow"
  chmod 644 "$root/etc/passwd" "$root/etc/group"
  chmod 640 "$root/etc/shadow"

  local tar="$dir/busybox-rootfs.tar" version created old_id
  old_id="$(image_id "$BUSYBOX_IMAGE")"
  tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$tar" .
  version="$("$root/bin/busybox" 2>/dev/null | head -n 1 | awk '{ print $2 }')"
  created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  docker import \
    --change 'CMD ["/bin/sh"]' \
    --change "ENV $IMAGE_PATH_ENV" \
    --change 'WORKDIR /' \
    --change 'LABEL org.opencontainers.image.title="container-pool-busybox"' \
    --change "LABEL org.opencontainers.image.description=\"Debian busybox-static $version ($n applets), built offline for container-pool tests\"" \
    --change "LABEL org.opencontainers.image.version=\"$version\"" \
    --change "LABEL org.opencontainers.image.created=\"$created\"" \
    --change 'LABEL container-pool.image.kind="busybox"' \
    --change 'LABEL container-pool.image.builder="scripts/build-sandbox-image.sh"' \
    --message "container-pool busybox: Debian busybox-static $version" \
    "$tar" "$BUSYBOX_IMAGE" >/dev/null
  rm -rf "$tar" "$root"

  log "smoke test of $BUSYBOX_IMAGE (hardened run)"
  smoke_test "$BUSYBOX_IMAGE" sh -c '
set -e
test "$(id -u):$(id -g)" = "65534:65534"
test "$(echo hello | cat)" = hello
rc=0; timeout 1 sleep 5 2>/dev/null || rc=$?; test "$rc" = 143 # busybox timeout: 143, not 124
test "$(yes | head -n 3 | wc -l)" = 3
dd if=/dev/zero of=/tmp/z bs=1k count=4 2>/dev/null; ls -l /tmp/z >/dev/null
ps >/dev/null
mkdir /tmp/f && printf x >/tmp/f/a && tar -c -f - -C /tmp/f ./a | tar -x -f - -C "$(mktemp -d /tmp/t.XXXXXX)"
test "$(realpath /tmp/f/a)" = /tmp/f/a && find /tmp/f -mindepth 1 -type f -exec stat -c "%f %s %n" {} + >/dev/null
id'
  drop_replaced_image "$old_id" "$BUSYBOX_IMAGE"
  log "built $BUSYBOX_IMAGE ($n applets) in $(elapsed_s "$t0")s, size $(image_size "$BUSYBOX_IMAGE")"
}

# In the repository, ensure-docker.sh starts an engine when none answers. The package (`npx container-pool image
# build`) ships this script without it and never starts an engine: one must answer.
if [ -f "$CP_SCRIPTS_DIR/ensure-docker.sh" ]; then
  "$CP_SCRIPTS_DIR/ensure-docker.sh" >/dev/null
else
  command -v docker >/dev/null 2>&1 || die "the docker CLI is not installed (Debian: apt-get install docker.io)"
  docker_answers || die "no Docker engine answers at ${DOCKER_HOST:-the default socket}: start one (e.g. systemctl start docker) or set DOCKER_HOST"
fi
case "$WHAT" in
  all)
    build_sandbox
    build_busybox
    build_datascience
    ;;
  sandbox) build_sandbox ;;
  busybox) build_busybox ;;
  datascience) build_datascience ;;
esac
