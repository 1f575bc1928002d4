#!/usr/bin/env bash
# Start, stop and report Keeper's own processes (agents, projector, callbacks, API, console,
# reconciler) in the background.
# The broker and the database have their own scripts (infra/kafka, infra/postgres); this one
# runs after them. Each component: a pid file in .local/run, a log in .local/logs.
#
#   infra/keeper.sh up | down | status | seed | banner
#
# One KEEPER_TOPIC_PREFIX (empty by default) names the topics of every component, so a second
# deployment (or a test) can share a broker without seeing anyone else's messages.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${KEEPER_STATE:-$ROOT/.local}"
RUN="$STATE/run"
LOGS="$STATE/logs"
PY="$ROOT/.venv/bin/python"
cd "$ROOT"

API_PORT="${KEEPER_API_PORT:-8000}"
AGENTS_PORT="${KEEPER_AGENTS_WEB_PORT:-6066}"
CONSOLE_PORT="${KEEPER_CONSOLE_PORT:-8501}"
export KEEPER_CONSOLE_API_BASE_URL="${KEEPER_CONSOLE_API_BASE_URL:-http://127.0.0.1:$API_PORT}"
export KEEPER_TOPIC_PREFIX="${KEEPER_TOPIC_PREFIX:-}"
export KEEPER_AGENTS_TOPIC_PREFIX="${KEEPER_AGENTS_TOPIC_PREFIX:-$KEEPER_TOPIC_PREFIX}"
export KEEPER_AGENTS_WEB_PORT="$AGENTS_PORT"
export KEEPER_AGENTS_DATADIR="${KEEPER_AGENTS_DATADIR:-$STATE/agents}"
export KEEPER_PUBLIC_BASE_URL="${KEEPER_PUBLIC_BASE_URL:-http://127.0.0.1:$API_PORT}"

# name|command|health: "http://..." (answers 2xx), "log:<regex>" (a line this start wrote to
# the component's log matches), or "-" (none). Started in this order, stopped in reverse.
COMPONENTS=("agents|$PY -m stream_agents worker -l info|log:Worker.*Ready")
# KEEPER_AGENT_WORKERS > 1: more workers of the same app, sharing the partitions between them.
for ((i = 2; i <= ${KEEPER_AGENT_WORKERS:-1}; i++)); do
  COMPONENTS+=("agents-$i|env KEEPER_AGENTS_WEB_PORT=$((AGENTS_PORT + i - 1)) KEEPER_AGENTS_DATADIR=$KEEPER_AGENTS_DATADIR-$i $PY -m stream_agents worker -l info|log:Worker.*Ready")
done
COMPONENTS+=(
  "projector|$PY -m stream_agents.projector|log:projector .* -> "
  "callbacks|$PY -m stream_agents.callbacks|log:callbacks .* sending"
  "card-projector|$PY -m stream_agents.card_projector|log:card projector .*card-alerts"
  "api|$ROOT/.venv/bin/uvicorn ingest_api.app:app --host 127.0.0.1 --port $API_PORT --timeout-graceful-shutdown 5|http://127.0.0.1:$API_PORT/readyz"
  "console|$ROOT/.venv/bin/streamlit run ops_console/app.py --server.headless true --server.address 127.0.0.1 --server.port $CONSOLE_PORT --browser.gatherUsageStats false --client.toolbarMode viewer|http://127.0.0.1:$CONSOLE_PORT/_stcore/health"
  "reconciler|$PY -m stream_agents.reconcile --every ${KEEPER_RECONCILE_EVERY_S:-300}|log:reconciling every"
)

# KEEPER_WITHOUT="console reconciler": leave those components out (tests that need fewer).
if [ -n "${KEEPER_WITHOUT:-}" ]; then
  kept=()
  for entry in "${COMPONENTS[@]}"; do
    [[ " $KEEPER_WITHOUT " == *" ${entry%%|*} "* ]] || kept+=("$entry")
  done
  COMPONENTS=("${kept[@]}")
fi

start_one() {
  local name=$1 cmd=$2 pidfile="$RUN/$1.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "$name: already running (pid $(cat "$pidfile"))"
    return
  fi
  # Remember where this start's lines begin, for a "log:" health check.
  stat -c %s "$LOGS/$name.log" 2>/dev/null >"$RUN/$name.offset" || echo 0 >"$RUN/$name.offset"
  # Detached from our stdout/stderr: a caller capturing them must not wait on the child.
  nohup $cmd >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  echo "$name: started (pid $(cat "$pidfile"), log $LOGS/$name.log)"
}

healthy() {
  local name=$1 check=$2
  case "$check" in
    -) return 0 ;;
    log:*)
      # Not a pipe: grep -q stops at the first match, and under pipefail the SIGPIPE that
      # tail then gets on a long log would read as "not healthy".
      grep -Eq -- "${check#log:}" \
        < <(tail -c +"$(($(cat "$RUN/$name.offset") + 1))" "$LOGS/$name.log" 2>/dev/null)
      ;;
    *)
      "$PY" - "$check" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).read()
PY
      ;;
  esac
}

wait_healthy() {
  local name=$1 url=$2 deadline=$((SECONDS + 90)) pid
  until healthy "$name" "$url"; do
    pid=$(cat "$RUN/$name.pid" 2>/dev/null || echo 0)
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$name: exited during start; last log lines:" >&2
      tail -n 40 "$LOGS/$name.log" >&2 || true
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "$name: not healthy after 90 s; last log lines:" >&2
      tail -n 40 "$LOGS/$name.log" >&2 || true
      return 1
    fi
    sleep 0.5
  done
  echo "$name: ready"
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
  rm -f "$pidfile" "$RUN/$name.offset"
}

up() {
  mkdir -p "$RUN" "$LOGS"
  local entry name cmd url
  # One at a time: the agents create the topics the others read, and the API is only ready
  # when the agents answer.
  for entry in "${COMPONENTS[@]}"; do
    IFS='|' read -r name cmd url <<<"$entry"
    start_one "$name" "$cmd"
    wait_healthy "$name" "$url"
  done
}

# Demo data (idempotent): a partner with an API key, a pool with cards, console users; the
# configuration is published to the agents.
seed() {
  "$PY" -m ingest_api.admin --actor demo-seed seed-demo --env-file "$STATE/demo-partner.env"
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
  echo "API:    http://127.0.0.1:$API_PORT  (OpenAPI: /docs, readiness: /readyz)"
  echo "Console: http://127.0.0.1:$CONSOLE_PORT  (operators, admins, analysts; docs/console.md)"
  echo "Agents: http://127.0.0.1:$AGENTS_PORT  (Faust web)"
  if [ -f "$STATE/demo-partner.env" ]; then
    echo "Demo partner credentials: $STATE/demo-partner.env (see README, \"Try it\")"
    echo "Demo console users: admin / operator / analyst, password <role>-demo-password" \
      "(or \$KEEPER_DEMO_<ROLE>_PASSWORD)"
  fi
  echo "Logs: $LOGS (components), $STATE/kafka, $STATE/pg"
  echo "Stop everything with: make down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  seed) seed ;;
  banner) banner ;;
  *) echo "usage: $0 up|down|status|seed|banner" >&2; exit 2 ;;
esac
