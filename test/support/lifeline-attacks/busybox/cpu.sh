for n in 1 2 3 4; do setsid sh -c 'while :; do :; done' cpatk-cpu </dev/null >/dev/null 2>&1 & done
printf '%s\n' "{\"lifeline\":{$lj},\"spinners\":4}"
