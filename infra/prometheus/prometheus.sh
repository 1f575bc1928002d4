#!/usr/bin/env bash
# Prometheus for Keeper, without Docker: Debian's `prometheus`, on loopback, scraping every
# Keeper process of this machine with the project's config and alert rules.
#
#   infra/prometheus/prometheus.sh install   apt-get install prometheus if it is missing
#   infra/prometheus/prometheus.sh up        install if needed, start (idempotent), wait for ready
#   infra/prometheus/prometheus.sh down      stop it
#   infra/prometheus/prometheus.sh status    say where it answers; exit 0 only if it does
#   infra/prometheus/prometheus.sh url       print its address if it runs (nothing otherwise)
#
# State in ${KEEPER_STATE:-<repo>/.local}/prometheus: a copy of infra/prometheus/prometheus.yml
# and rules.yml, targets/keeper.json written from the same port variables infra/keeper.sh
# uses (KEEPER_API_PORT, KEEPER_AGENTS_WEB_PORT, KEEPER_METRICS_<PROCESS>_PORT), data/, and
# prometheus.log. It listens on 127.0.0.1:${KEEPER_PROMETHEUS_PORT:-9090}.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${KEEPER_STATE:-$ROOT/.local}/prometheus"
PORT="${KEEPER_PROMETHEUS_PORT:-9090}"
ADDRESS="127.0.0.1:$PORT"
PIDFILE="$STATE/prometheus.pid"

say() { printf 'prometheus: %s\n' "$*"; }
die() { printf 'prometheus: error: %s\n' "$*" >&2; exit 1; }

cmd_install() {
  if command -v prometheus >/dev/null 2>&1; then
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 || die "prometheus is missing and apt-get is unavailable"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "installing Debian's prometheus"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends prometheus
  # The package may start its own service on :9090; Keeper runs its own instance instead.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    $sudo systemctl disable --now prometheus || true
  fi
}

running() {
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null || echo 0)
  [ "$pid" -gt 0 ] && kill -0 "$pid" 2>/dev/null
}

ready() {
  "$ROOT/.venv/bin/python" - "http://$ADDRESS/-/ready" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).read()
PY
}

write_targets() {
  local api="${KEEPER_API_PORT:-8000}" agents="${KEEPER_AGENTS_WEB_PORT:-6066}"
  mkdir -p "$STATE/targets"
  cat >"$STATE/targets/keeper.json.tmp" <<JSON
[
  {"targets": ["127.0.0.1:$api"], "labels": {"component": "api"}},
  {"targets": ["127.0.0.1:$agents"], "labels": {"component": "agents"}},
  {"targets": ["127.0.0.1:${KEEPER_METRICS_PROJECTOR_PORT:-9401}"], "labels": {"component": "projector"}},
  {"targets": ["127.0.0.1:${KEEPER_METRICS_CARD_PROJECTOR_PORT:-9402}"], "labels": {"component": "card-projector"}},
  {"targets": ["127.0.0.1:${KEEPER_METRICS_CALLBACKS_PORT:-9403}"], "labels": {"component": "callbacks"}},
  {"targets": ["127.0.0.1:${KEEPER_METRICS_RECONCILER_PORT:-9404}"], "labels": {"component": "reconciler"}}
]
JSON
  mv "$STATE/targets/keeper.json.tmp" "$STATE/targets/keeper.json"
}

cmd_up() {
  cmd_install
  mkdir -p "$STATE/data"
  cp "$ROOT/infra/prometheus/prometheus.yml" "$ROOT/infra/prometheus/rules.yml" "$STATE/"
  # Extra scrape/evaluation speed for tests: KEEPER_PROMETHEUS_INTERVAL=1s.
  if [ -n "${KEEPER_PROMETHEUS_INTERVAL:-}" ]; then
    sed -i -E "s/^(  (scrape|evaluation)_interval:).*/\1 $KEEPER_PROMETHEUS_INTERVAL/" \
      "$STATE/prometheus.yml"
    sed -i -E "s/^(  scrape_timeout:).*/\1 $KEEPER_PROMETHEUS_INTERVAL/" "$STATE/prometheus.yml"
  fi
  write_targets
  if running; then
    say "already running on http://$ADDRESS (pid $(cat "$PIDFILE"))"
    return 0
  fi
  nohup prometheus \
    --config.file="$STATE/prometheus.yml" \
    --storage.tsdb.path="$STATE/data" \
    --storage.tsdb.retention.time="${KEEPER_PROMETHEUS_RETENTION:-7d}" \
    --web.listen-address="$ADDRESS" \
    --web.enable-lifecycle \
    >>"$STATE/prometheus.log" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  local deadline=$((SECONDS + 30))
  until ready; do
    running || { tail -n 20 "$STATE/prometheus.log" >&2; die "exited during start"; }
    [ $SECONDS -lt $deadline ] || { tail -n 20 "$STATE/prometheus.log" >&2; die "not ready after 30 s"; }
    sleep 0.3
  done
  say "ready on http://$ADDRESS (config $STATE/prometheus.yml, log $STATE/prometheus.log)"
}

cmd_down() {
  if running; then
    local pid
    pid=$(cat "$PIDFILE")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    say "stopped"
  fi
  rm -f "$PIDFILE"
}

cmd_status() {
  if running && ready; then
    say "running on http://$ADDRESS (pid $(cat "$PIDFILE"))"
  else
    say "not running"
    return 1
  fi
}

cmd_url() {
  if running && ready; then echo "http://$ADDRESS"; fi
}

case "${1:-}" in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  url) cmd_url ;;
  *) echo "usage: $0 install|up|down|status|url" >&2; exit 2 ;;
esac
