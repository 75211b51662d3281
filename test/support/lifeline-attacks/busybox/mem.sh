# Two loops of 'tail /dev/zero' (no newline ever: its buffer grows until the OOM killer ends it).
ook() { _o=""; while read -r _k _n; do [ "$_k" = oom_kill ] && _o=$_n; done < /sys/fs/cgroup/memory/memory.oom_control; }
read -r lim < /sys/fs/cgroup/memory/memory.limit_in_bytes
ook; before=$_o
for n in 1 2; do setsid sh -c 'while :; do tail /dev/zero; done' cpatk-mem </dev/null >/dev/null 2>&1 & done
i=0; while [ $i -lt 20000 ]; do ook; [ "$_o" -gt "$before" ] && break; i=$((i+1)); done
printf '%s\n' "{\"lifeline\":{$lj},\"limit\":$lim,\"oomKillsBefore\":$before,\"oomKills\":$_o}"
