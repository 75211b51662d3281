setsid sh -c 'exec 0<&- 1>&- 2>&-; while :; do usleep 50000; done' cpatk-fds </dev/null >/dev/null 2>&1 &
printf '%s\n' "{\"lifeline\":{$lj},\"closed\":[0,1,2]}"
