# /proc/<pid>/fd (the owner's attach stream is fd 0 of cat), environ, mem, root of every pid; renice it, raise
# its oom_score_adj.
opens() {
  try eval "ls /proc/$1/fd >/dev/null"; o="\"fd\":\"$_r\""
  try eval "true < /proc/$1/fd/0"; o="$o,\"fd0\":\"$_r\""
  try eval "true >> /proc/$1/fd/1"; o="$o,\"fd1w\":\"$_r\""
  try eval "true < /proc/$1/environ"; o="$o,\"environ\":\"$_r\""
  try eval "true < /proc/$1/mem"; o="$o,\"mem\":\"$_r\""
  try eval "ls /proc/$1/root/ >/dev/null"; o="$o,\"root\":\"$_r\""
  try renice -n 19 -p $1; o="$o,\"nice\":\"$_r\""
  try eval "echo 1000 > /proc/$1/oom_score_adj"; o="$o,\"oomAdj\":\"$_r\""
}
sleep 60 & v=$!
opens $v; c="$o"
kill -9 $v; wait $v
r=""; for p in $life; do opens $p; r="$r${r:+,}\"$p\":{$o}"; done
LIFE="$life" setsid sh -c '
while :; do
  for p in $LIFE; do
    for f in 0 1 2; do true < /proc/$p/fd/$f; true >> /proc/$p/fd/$f; done
    ls /proc/$p/fd /proc/$p/root/ >/dev/null
  done
  usleep 20000
done' cpatk-procfd </dev/null >/dev/null 2>&1 &
printf '%s\n' "{\"lifeline\":{$lj},\"control\":{$c},\"open\":{$r}}"
