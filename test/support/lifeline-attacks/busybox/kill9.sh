sleep 60 & v=$!
kill -9 -1 2>/dev/null; g=$?
wait $v; vs=$?
usleep 50000
al=""; for p in $life; do pstate $p; x=false; case "$_s" in R|S|D) x=true;; esac; al="$al${al:+,}\"$p\":$x"; done
k=""; for p in $life; do try kill -9 $p; k="$k${k:+,}\"$p\":\"$_r\""; done
LIFE="$life" setsid sh -c "$waitfg"'
while :; do kill -9 -1 2>/dev/null; for p in $LIFE; do kill -9 $p 2>/dev/null; done; usleep 20000; done' cpatk-kill9 $me </dev/null >/dev/null 2>&1 &
printf '%s\n' "{\"lifeline\":{$lj},\"groupRc\":$g,\"victimStatus\":$vs,\"alive\":{$al},\"direct\":{$k}}"
