#!/usr/bin/env bash
# Keep one component running: start it, and whenever it exits (a crash, a halt, kill -9)
# start it again after a back-off that doubles from KEEPER_RESTART_FIRST_S (1 s) up to
# KEEPER_RESTART_MAX_S (60 s), and falls back to the first step once a run has lasted
# KEEPER_RESTART_STABLE_S (30 s). Each restart is one line in $RUN/restarts.log and in the
# component's log. SIGTERM (infra/keeper.sh down) stops the component (TERM, then KILL after
# 10 s) and the supervisor with it.
#
#   infra/supervise.sh NAME "COMMAND"      (RUN and LOGS come from the environment)
#
# Files: $RUN/NAME.pid (the component's pid, rewritten at each start), $RUN/NAME.offset (where
# this start's lines begin in $LOGS/NAME.log), $RUN/supervise/NAME.pid (this supervisor).
set -uo pipefail
name=$1
cmd=$2
RUN=${RUN:?RUN must name the pid folder}
LOGS=${LOGS:?LOGS must name the log folder}
first_s=${KEEPER_RESTART_FIRST_S:-1}
max_s=${KEEPER_RESTART_MAX_S:-60}
stable_s=${KEEPER_RESTART_STABLE_S:-30}
log="$LOGS/$name.log"
pidfile="$RUN/$name.pid"
mkdir -p "$RUN/supervise" "$LOGS"
echo $$ >"$RUN/supervise/$name.pid"

child=0
stopping=0
trap 'stopping=1' TERM INT HUP

finish() {
  if [ "$child" -gt 0 ] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$child" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$child" 2>/dev/null
  fi
  wait "$child" 2>/dev/null
  rm -f "$pidfile" "$RUN/$name.offset" "$RUN/supervise/$name.pid"
  exit 0
}

describe() { # an exit status in words
  if [ "$1" -gt 128 ]; then echo "$1 (signal $(($1 - 128)))"; else echo "$1"; fi
}

backoff_s=$first_s
restarts=0
while :; do
  stat -c %s "$log" 2>/dev/null >"$RUN/$name.offset" || echo 0 >"$RUN/$name.offset"
  # shellcheck disable=SC2086 # the command is a word list, as infra/keeper.sh writes it
  $cmd >>"$log" 2>&1 </dev/null &
  child=$!
  echo "$child" >"$pidfile"
  started=$SECONDS
  while :; do
    wait "$child"
    status=$?
    [ "$stopping" = 1 ] && finish
    kill -0 "$child" 2>/dev/null || break # else a signal interrupted the wait
  done
  ran_s=$((SECONDS - started))
  [ "$ran_s" -ge "$stable_s" ] && backoff_s=$first_s
  restarts=$((restarts + 1))
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) component=$name exit=$(describe "$status")" \
    "ran_s=$ran_s restart=$restarts backoff_s=$backoff_s" >>"$RUN/restarts.log"
  echo "$(date -u '+%Y-%m-%d %H:%M:%S') supervisor: $name exited with status" \
    "$(describe "$status") after $ran_s s; restart $restarts in $backoff_s s" >>"$log"
  sleep "$backoff_s" &
  wait $! 2>/dev/null || kill $! 2>/dev/null
  [ "$stopping" = 1 ] && finish
  backoff_s=$((backoff_s * 2 > max_s ? max_s : backoff_s * 2))
done
