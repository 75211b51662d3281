# An ash that cannot fork exits, so the bomb runs in an interactive shell (errors return it to its input),
# fed "retry" lines forever by a NOFORK 'yes'; it keeps trying to fork, 50 times a second.
read -r mx < /sys/fs/cgroup/pids/pids.max
mkfifo /tmp/cpatk-fifo
(echo 'exec 3<>/tmp/cpatk-fifo'; echo 'b() { while :; do sleep 100000 & done; }'; yes 'read -t 0.02 x <&3; b') | setsid sh -i -s cpatk-pids >/dev/null 2>&1 &
i=0; cur=0
while [ $i -lt 100000 ]; do read -r cur < /sys/fs/cgroup/pids/pids.current; [ "$cur" -ge "$mx" ] && break; i=$((i+1)); done
printf '%s\n' "{\"lifeline\":{$lj},\"pidsMax\":\"$mx\",\"pidsCurrent\":\"$cur\"}"
