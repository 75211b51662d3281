f=""
for d in /tmp $HOME /dev/shm; do
  m=$(dd if=/dev/zero of=$d/cpatk-fill bs=65536 2>&1)
  case "$m" in *"No space left"*) e=ENOSPC;; *) e=other;; esac
  f="$f${f:+,}\"$d\":[$(stat -c %s $d/cpatk-fill),\"$e\"]"
done
setsid sh -c '
i=0
while :; do
  for d in /tmp $HOME /dev/shm; do echo x >> $d/cpatk-fill; true > $d/cpatk-more-$i; done
  i=$((i+1)); usleep 20000
done' cpatk-tmpfs </dev/null >/dev/null 2>&1 &
printf '%s\n' "{\"lifeline\":{$lj},\"filled\":{$f}}"
