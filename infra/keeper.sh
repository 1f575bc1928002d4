#!/usr/bin/env bash
# Start, stop and report Keeper's own processes (API, agents, console) in the background.
# The broker and the database have their own scripts (infra/kafka, infra/postgres); this one
# runs after them. Each component: a pid file in .local/run, a log in .local/logs.
#
#   infra/keeper.sh up | down | status | banner
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${KEEPER_STATE:-$ROOT/.local}"
RUN="$STATE/run"
LOGS="$STATE/logs"
PY="$ROOT/.venv/bin/python"
cd "$ROOT"

# name|command|health URL ("-" when the component has no HTTP health check).
# Components join this list as they are built (see README "Layout").
API_PORT="${KEEPER_API_PORT:-8000}"
COMPONENTS=(
  "api|$ROOT/.venv/bin/uvicorn ingest_api.app:app --host 127.0.0.1 --port $API_PORT|http://127.0.0.1:$API_PORT/healthz"
)

start_one() {
  local name=$1 cmd=$2 pidfile="$RUN/$1.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "$name: already running (pid $(cat "$pidfile"))"
    return
  fi
  # Detached from our stdout/stderr: a caller capturing them must not wait on the child.
  nohup $cmd >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  echo "$name: started (pid $(cat "$pidfile"), log $LOGS/$name.log)"
}

wait_healthy() {
  local name=$1 url=$2 deadline=$((SECONDS + 60))
  [ "$url" = "-" ] && return 0
  until "$PY" - "$url" <<'PY' 2>/dev/null; do
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).read()
PY
    if [ $SECONDS -ge $deadline ]; then
      echo "$name: not healthy after 60 s; last log lines:" >&2
      tail -n 40 "$LOGS/$name.log" >&2 || true
      return 1
    fi
    sleep 0.5
  done
  echo "$name: healthy ($url)"
}

stop_one() {
  local name=$1 pidfile="$RUN/$1.pid"
  [ -f "$pidfile" ] || return 0
  local pid
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    echo "$name: stopped"
  fi
  rm -f "$pidfile"
}

up() {
  mkdir -p "$RUN" "$LOGS"
  local entry name cmd url
  for entry in "${COMPONENTS[@]}"; do
    IFS='|' read -r name cmd url <<<"$entry"
    start_one "$name" "$cmd"
  done
  for entry in "${COMPONENTS[@]}"; do
    IFS='|' read -r name cmd url <<<"$entry"
    wait_healthy "$name" "$url"
  done
}

down() {
  local entry name cmd url i
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    IFS='|' read -r name cmd url <<<"${COMPONENTS[$i]}"
    stop_one "$name"
  done
}

status() {
  local rc=0 entry name cmd url pidfile
  "$ROOT/infra/kafka/kafka.sh" status || rc=1
  "$ROOT/infra/postgres/pg.sh" status || rc=1
  for entry in "${COMPONENTS[@]}"; do
    IFS='|' read -r name cmd url <<<"$entry"
    pidfile="$RUN/$name.pid"
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "$name: running (pid $(cat "$pidfile"))"
    else
      echo "$name: stopped"
      rc=1
    fi
  done
  return $rc
}

banner() {
  echo
  echo "Keeper is up."
  status || true
  echo
  echo "API:  http://127.0.0.1:$API_PORT  (OpenAPI: /docs, readiness: /readyz)"
  echo "Logs: $LOGS (components), $STATE/kafka, $STATE/pg"
  echo "Stop everything with: make down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  banner) banner ;;
  *) echo "usage: $0 up|down|status|banner" >&2; exit 2 ;;
esac
