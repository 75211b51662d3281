sleep 60 & v=$!
s=""; k=""
for p in $life; do
  try kill -STOP $p; s="$s${s:+,}\"$p\":\"$_r\""
  try kill -KILL $p; k="$k${k:+,}\"$p\":\"$_r\""
done
kill -STOP -1 2>/dev/null; g=$?
# A stop takes effect when the target next runs: wait for the victim's (up to 2 s on a loaded machine).
_i=0; pstate $v
while [ "$_s" != T ] && [ $_i -lt 200 ]; do usleep 10000; _i=$((_i + 1)); pstate $v; done
a=""; for p in $life; do pstate $p; a="$a${a:+,}\"$p\":\"$_s\""; done
pstate $v; vs=$_s
kill -9 $v; wait $v
LIFE="$life" setsid sh -c "$waitfg"'
while :; do
  kill -STOP -1 2>/dev/null
  for d in /proc/[0-9]*; do p=${d#/proc/}; [ "$p" = "$$" ] || kill -STOP $p 2>/dev/null; done
  for p in $LIFE; do kill -KILL $p 2>/dev/null; done
  usleep 20000
done' cpatk-stop $me </dev/null >/dev/null 2>&1 &
printf '%s\n' "{\"lifeline\":{$lj},\"stop\":{$s},\"kill\":{$k},\"groupRc\":$g,\"after\":{$a},\"victimState\":\"$vs\"}"
