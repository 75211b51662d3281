/**
 * The shell helper every file operation runs inside the container, as the sandbox user (never the host following
 * a path the sandbox planted): POSIX sh plus tar, realpath, find, stat, mktemp, head, mv (coreutils or busybox).
 * argv: `<workdir> <op> args...`. It resolves every path with realpath as the sandbox user and refuses one that
 * leads outside the work dir and /tmp; a refusal is one line `CPOOL:<REASON>:<index>` on stderr, exit 3.
 * Members are streamed as tar (GNU tar and busybox tar archive a fifo found at a path as a header, never opening
 * it; a fifo swapped in between their lstat and open could block one, which `timeout -s KILL` ends); what goes
 * out is bounded by `head -c`, and the host counts every byte anyway.
 *
 * - `write <stage-root W|T> (<path> <mode>)...`, stdin a tar of members `0`, `1`, ...: extracts into a fresh
 *   staging dir, then per file resolves the deepest existing parent, checks it, creates the missing parents,
 *   checks again, and renames the staged file over the target (atomic on one filesystem; a symlink at the target
 *   is replaced, never followed).
 * - `read <path> <limit>`: a tar of the one regular file the path resolves to.
 * - `list <dir> <limit> <token>`: `<hex mode> <size> <token><./name><token>` per entry (lstat), at most `limit`
 *   bytes.
 * - `remove <path>`: the entry itself (a symlink, not its target; a directory recursively); absent is fine.
 * - `scan <maxdepth|-> <dots 0|1> <limit> <token>`: the work dir's regular files as `list` prints them (a first
 *   record names the resolved work dir), dot entries pruned unless `dots` (busybox find runs no `-exec +`
 *   inside parentheses).
 * - `fetch <limit> <./path>...`: a tar of those files (relative to the work dir), no recursion.
 */
export const FILES_SCRIPT = `
set -u
W=$(realpath "$1" 2>/dev/null) || { echo 'CPOOL:NOWORKDIR:0' >&2; exit 3; }
T=$(realpath /tmp 2>/dev/null) || T=/tmp
op=$2; shift 2
fail() { printf 'CPOOL:%s:%s\\n' "$1" "$2" >&2; exit 3; }
inside() { case "$1" in "$W"|"$W"/*|"$T"|"$T"/*) return 0;; esac; return 1; }
case "$op" in
write)
  if [ "$1" = T ]; then SR=$T; else SR=$W; fi; shift
  st=$(mktemp -d "$SR/.cpool-in.XXXXXX") || fail STAGE 0
  trap 'rm -rf "$st"' EXIT
  tar -x -f - -C "$st" || fail EXTRACT 0
  i=0
  while [ $# -gt 1 ]; do
    p=$1; m=$2; shift 2
    d=\${p%/*}; b=\${p##*/}; [ -n "$d" ] || d=/
    e=$d; rest=
    while [ ! -e "$e" ] && [ ! -L "$e" ]; do rest="/\${e##*/}$rest"; e=\${e%/*}; [ -n "$e" ] || e=/; done
    r=$(realpath "$e" 2>/dev/null) || fail OUTSIDE $i
    inside "$r" || fail OUTSIDE $i
    [ -d "$r" ] || fail NOTDIR $i
    if [ -n "$rest" ]; then mkdir -p "$r$rest" || fail MKDIR $i; fi
    f=$(realpath "$r$rest" 2>/dev/null) || fail OUTSIDE $i
    inside "$f" || fail OUTSIDE $i
    t="$f/$b"
    if [ -L "$t" ]; then rm -f "$t" || fail REPLACE $i
    elif [ -d "$t" ]; then fail ISDIR $i; fi
    chmod "$m" "$st/$i" || fail CHMOD $i
    mv -f "$st/$i" "$t" || fail MOVE $i
    i=$((i+1))
  done
  ;;
read)
  r=$(realpath "$1" 2>/dev/null) || fail MISSING 0
  inside "$r" || fail OUTSIDE 0
  if [ ! -f "$r" ]; then if [ -e "$r" ]; then fail NOTFILE 0; fi; fail MISSING 0; fi
  [ -r "$r" ] || fail NOREAD 0
  d=\${r%/*}; [ -n "$d" ] || d=/
  tar -c -f - -C "$d" "./\${r##*/}" | head -c "$2"
  ;;
list)
  r=$(realpath "$1" 2>/dev/null) || fail MISSING 0
  inside "$r" || fail OUTSIDE 0
  if [ ! -d "$r" ]; then if [ -e "$r" ]; then fail NOTDIR 0; fi; fail MISSING 0; fi
  cd "$r" 2>/dev/null || fail NOREAD 0
  find . -mindepth 1 -maxdepth 1 -exec stat -c "%f %s $3%n$3" {} + 2>/dev/null | head -c "$2"
  ;;
remove)
  d=\${1%/*}; b=\${1##*/}; [ -n "$d" ] || d=/
  [ -e "$d" ] || exit 0
  r=$(realpath "$d" 2>/dev/null) || fail OUTSIDE 0
  inside "$r" || fail OUTSIDE 0
  t="$r/$b"
  [ "$t" != "$W" ] && [ "$t" != "$T" ] || fail ROOT 0
  if [ -e "$t" ] || [ -L "$t" ]; then rm -rf "$t" || fail REMOVE 0; fi
  ;;
scan)
  printf '0 0 %s%s%s\\n' "$4" "$W" "$4"
  cd "$W" || exit 0
  if [ "$1" = - ]; then set -- "$2" "$3" "$4"; else set -- "$2" "$3" "$4" -maxdepth "$1"; fi
  dots=$1; limit=$2; tok=$3; shift 3
  if [ "$dots" = 1 ]; then
    find "$W" -mindepth 1 "$@" -type f -exec stat -c "%f %s $tok%n$tok" {} + 2>/dev/null | head -c "$limit"
  else
    find "$W" -mindepth 1 "$@" \\( -name '.*' -prune \\) -o -type f -exec stat -c "%f %s $tok%n$tok" {} + 2>/dev/null | head -c "$limit"
  fi
  ;;
fetch)
  limit=$1; shift
  cd "$W" || exit 0
  tar -c -f - --no-recursion "$@" | head -c "$limit"
  ;;
*) fail OP 0 ;;
esac
`;
