me=$$
st() { _v=""; [ -r /proc/$1/status ] || return 0; while read -r _k _a _rest; do if [ "$_k" = "$2:" ]; then _v=$_a; break; fi; done < /proc/$1/status; }
try() {
  if "$@" 2>/tmp/.cpatk-e; then _r=ok; else
    _m=""; read -r _m < /tmp/.cpatk-e
    case "$_m" in
      *"not permitted"*) _r=EPERM;; *"ermission denied"*) _r=EACCES;; *"No such process"*) _r=ESRCH;;
      *"No space left"*) _r=ENOSPC;; *) _r="other";;
    esac
  fi
}
pstate() { _s=""; [ -r /proc/$1/stat ] || return 0; read -r _a _b _s _rest < /proc/$1/stat; }
# The lifeline comes up as docker-init -> sh (exec cat) + sh -> sleep: attack it once it is all there.
_i=0
while [ $_i -lt 300 ]; do
  _c=0; _s=0
  for d in /proc/[0-9]*; do read -r n < $d/comm 2>/dev/null && { [ "$n" = cat ] && _c=1; [ "$n" = sleep ] && _s=1; }; done
  [ $_c = 1 ] && [ $_s = 1 ] && break
  _i=$((_i + 1)); usleep 10000
done
life=""; lj=""
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  [ "$p" = "$me" ] && continue
  st $p Uid
  [ "$_v" = 0 ] || continue
  life="$life $p"
  read -r n < $d/comm
  lj="$lj${lj:+,}\"$p\":{\"Name\":\"$n\""
  for k in State CapInh CapPrm CapEff CapBnd CapAmb NoNewPrivs Seccomp; do st $p $k; lj="$lj,\"$k\":\"$_v\""; done
  lj="$lj}"
done
waitfg='while [ -r /proc/$1/stat ]; do read -r a b c rest < /proc/$1/stat; [ "$c" = Z ] && break; usleep 10000; done'
