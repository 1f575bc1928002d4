#!/usr/bin/env bash
# PostgreSQL for Keeper development and tests, without Docker.
#
#   infra/postgres/pg.sh install   install the PostgreSQL server binaries (Debian/apt) if missing
#   infra/postgres/pg.sh up        start the project-owned cluster (idempotent) and wait for health
#   infra/postgres/pg.sh down      stop it (fast shutdown; idempotent)
#   infra/postgres/pg.sh status    say whether it answers; exit 0 only if it does
#   infra/postgres/pg.sh psql ...  psql as the application role (extra args are passed through)
#
# Two modes:
#   * DATABASE_URL set and pointing somewhere other than our own cluster: nothing is started;
#     `up` waits until that server answers and creates its database if missing.
#   * Otherwise a project-owned cluster lives in ${KEEPER_STATE:-<repo>/.local}/pg:
#       data/   the cluster (fsync on: this is a payment system, even on a laptop)
#       run/    the unix socket (kept out of /var/run so no root-owned paths are needed)
#       log/    postgres.log
#     It listens on 127.0.0.1:${KEEPER_PG_PORT:-5544} only. Role `keeper` (password `keeper`,
#     CREATEDB so tests can make throwaway databases) owns database `keeper`:
#       postgresql+psycopg2://keeper:keeper@127.0.0.1:5544/keeper
#
# PostgreSQL refuses to run as root, so when this script runs as root the cluster belongs to
# the `postgres` system user. If that user cannot reach the state dir (e.g. the checkout sits
# under a 0700 home directory), the state moves to /var/tmp/keeper-pg-<uid>-<hash of state dir>
# and the script says so; set KEEPER_STATE to choose another place.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PG_HOST=127.0.0.1
PG_PORT="${KEEPER_PG_PORT:-5544}"
APP_ROLE=keeper
APP_PASSWORD=keeper
APP_DB=keeper
STATE_DIR="${KEEPER_STATE:-$REPO_ROOT/.local}"
WAIT_S="${KEEPER_PG_WAIT_S:-60}"

say() { printf 'postgres: %s\n' "$*"; }
die() { printf 'postgres: error: %s\n' "$*" >&2; exit 1; }

# --- binaries -------------------------------------------------------------------------------

find_bin_dir() {
    # Newest /usr/lib/postgresql/<version>/bin that has initdb, else whatever is on PATH.
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | while read -r d; do
        [[ -x "$d/initdb" ]] && echo "$d"; done | tail -n 1)"
    if [[ -z "$dir" ]] && command -v initdb >/dev/null 2>&1; then
        dir="$(dirname "$(command -v initdb)")"
    fi
    printf '%s' "$dir"
}

cmd_install() {
    local dir
    dir="$(find_bin_dir)"
    if [[ -n "$dir" ]]; then
        say "binaries present in $dir"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "no initdb found and apt-get unavailable; install PostgreSQL >= 13"
    [[ $EUID -eq 0 ]] || die "no initdb found; run '$0 install' as root (apt-get install postgresql)"
    say "installing PostgreSQL server binaries (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Keep Debian from creating (and starting) its own 'main' cluster on :5432; the project's
    # cluster is the only one wanted here.
    apt-get install -y -qq postgresql-common >/dev/null
    sed -ri 's/^#?\s*create_main_cluster\s*=.*/create_main_cluster = false/' \
        /etc/postgresql-common/createcluster.conf
    apt-get install -y -qq postgresql >/dev/null
    dir="$(find_bin_dir)"
    [[ -n "$dir" ]] || die "apt-get finished but no initdb was found"
    say "binaries installed in $dir"
}

require_bins() {
    BIN_DIR="$(find_bin_dir)"
    if [[ -z "$BIN_DIR" ]]; then
        cmd_install
        BIN_DIR="$(find_bin_dir)"
    fi
}

# --- who runs the cluster -------------------------------------------------------------------

if [[ $EUID -eq 0 ]]; then
    CLUSTER_USER=postgres
    as_cluster() { runuser -u "$CLUSTER_USER" -- "$@"; }
else
    CLUSTER_USER="$(id -un)"
    as_cluster() { "$@"; }
fi

fallback_state_dir() {
    printf '/var/tmp/keeper-pg-%s-%s' "$(id -u)" "$(printf '%s' "$STATE_DIR" | cksum | cut -d' ' -f1)"
}

locate_state_dir() {
    # For down/status/psql: follow 'up' to the fallback dir if that is where the cluster went.
    local fallback
    fallback="$(fallback_state_dir)"
    if [[ ! -d "$STATE_DIR/pg/data" && -d "$fallback/pg/data" ]]; then
        STATE_DIR="$fallback"
    fi
    set_paths
}

set_paths() {
    PG_DIR="$STATE_DIR/pg"
    DATA_DIR="$PG_DIR/data"
    RUN_DIR="$PG_DIR/run"
    LOG_DIR="$PG_DIR/log"
    LOG_FILE="$LOG_DIR/postgres.log"
}

prepare_state_dir() {
    # Make the pg/ folder belong to the cluster user and check that user can actually reach it.
    set_paths
    mkdir -p "$PG_DIR"
    if [[ $EUID -eq 0 ]]; then
        chmod o+x "$STATE_DIR"
        chown "$CLUSTER_USER": "$PG_DIR"
        if ! as_cluster test -w "$PG_DIR" -a -x "$PG_DIR"; then
            local fallback
            fallback="$(fallback_state_dir)"
            say "user $CLUSTER_USER cannot reach $PG_DIR; using state dir $fallback instead"
            rmdir "$PG_DIR" 2>/dev/null || true
            STATE_DIR="$fallback"
            set_paths
            mkdir -p "$PG_DIR"
            chmod 0755 "$STATE_DIR"
            chown "$CLUSTER_USER": "$PG_DIR"
        fi
    fi
    as_cluster mkdir -p "$RUN_DIR" "$LOG_DIR"
    as_cluster chmod 0700 "$PG_DIR"
}

# --- DATABASE_URL handling ------------------------------------------------------------------

urldecode() { local s="${1//+/ }"; printf '%b' "${s//%/\\x}"; }

# Sets URL_USER URL_PASSWORD URL_HOST URL_PORT URL_DB from a SQLAlchemy or libpq URL.
parse_url() {
    local url="$1" re='^[A-Za-z0-9+]+://(([^:@/]*)(:([^@/]*))?@)?([^:/?]+)(:([0-9]+))?(/([^?]*))?'
    [[ "$url" =~ $re ]] || die "cannot parse DATABASE_URL"
    URL_USER="$(urldecode "${BASH_REMATCH[2]}")"
    URL_PASSWORD="$(urldecode "${BASH_REMATCH[4]}")"
    URL_HOST="${BASH_REMATCH[5]}"
    URL_PORT="${BASH_REMATCH[7]:-5432}"
    URL_DB="$(urldecode "${BASH_REMATCH[9]}")"
    URL_DB="${URL_DB:-${URL_USER:-postgres}}"
}

external_url() {
    # True when DATABASE_URL names a server that is not our own cluster.
    [[ -n "${DATABASE_URL:-}" ]] || return 1
    parse_url "$DATABASE_URL"
    case "$URL_HOST" in
        127.0.0.1 | localhost | ::1 | "[::1]") [[ "$URL_PORT" != "$PG_PORT" ]] ;;
        *) return 0 ;;
    esac
}

ext_psql() {
    # psql against the external server; the password travels in the environment, not argv.
    PGPASSWORD="$URL_PASSWORD" PGCONNECT_TIMEOUT=5 "$BIN_DIR/psql" -X -q -v ON_ERROR_STOP=1 \
        -h "$URL_HOST" -p "$URL_PORT" ${URL_USER:+-U "$URL_USER"} "$@"
}

external_up() {
    local deadline=$((SECONDS + WAIT_S))
    until "$BIN_DIR/pg_isready" -q -h "$URL_HOST" -p "$URL_PORT" ${URL_USER:+-U "$URL_USER"} -t 2; do
        ((SECONDS < deadline)) || die "DATABASE_URL server $URL_HOST:$URL_PORT did not answer in ${WAIT_S}s"
        sleep 1
    done
    local exists
    exists="$(ext_psql -d postgres -tA -v db="$URL_DB" \
        <<<"SELECT 1 FROM pg_database WHERE datname = :'db'")" \
        || die "cannot log in to $URL_HOST:$URL_PORT as '${URL_USER}'"
    if [[ "$exists" != 1 ]]; then
        ext_psql -d postgres -v db="$URL_DB" <<<'CREATE DATABASE :"db"' \
            || die "cannot create database '$URL_DB' on $URL_HOST:$URL_PORT"
        say "created database $URL_DB"
    fi
    say "healthy on $URL_HOST:$URL_PORT (external server from DATABASE_URL; logs: not ours)"
}

# --- the project-owned cluster --------------------------------------------------------------

is_running() { [[ -d "$DATA_DIR" ]] && as_cluster "$BIN_DIR/pg_ctl" status -D "$DATA_DIR" >/dev/null 2>&1; }

answers() { "$BIN_DIR/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -U "$APP_ROLE" -d postgres -t 2; }

fail_with_log() {
    printf 'postgres: error: %s\n' "$1" >&2
    if [[ -f "$LOG_FILE" ]]; then
        printf -- '--- last lines of %s ---\n' "$LOG_FILE" >&2
        tail -n 40 "$LOG_FILE" >&2 || true
    fi
    exit 1
}

init_cluster() {
    [[ -f "$DATA_DIR/PG_VERSION" ]] && return 0
    say "initialising cluster in $DATA_DIR"
    # Local socket connections are for the cluster's OS user only (peer); TCP is password-only.
    as_cluster "$BIN_DIR/initdb" -D "$DATA_DIR" -U postgres -E UTF8 --locale=C \
        --data-checksums --auth-local=peer --auth-host=scram-sha-256 >"$LOG_DIR/initdb.log" 2>&1 \
        || { LOG_FILE="$LOG_DIR/initdb.log"; fail_with_log "initdb failed"; }
    as_cluster sh -c "echo \"include_if_exists = 'keeper.conf'\" >> '$DATA_DIR/postgresql.conf'"
}

write_config() {
    # Rewritten on every start so a changed port or state dir takes effect.
    as_cluster tee "$DATA_DIR/keeper.conf" >/dev/null <<EOF
# Managed by infra/postgres/pg.sh; edits are overwritten on the next 'up'.
listen_addresses = '$PG_HOST'
port = $PG_PORT
unix_socket_directories = '$RUN_DIR'
max_connections = 100
shared_buffers = 32MB
work_mem = 4MB
maintenance_work_mem = 32MB
# Durability stays on: a lost commit here is a lost payment.
fsync = on
full_page_writes = on
synchronous_commit = on
password_encryption = scram-sha-256
timezone = 'UTC'
log_timezone = 'UTC'
log_min_duration_statement = 1000
EOF
    as_cluster tee "$DATA_DIR/pg_hba.conf" >/dev/null <<EOF
# Managed by infra/postgres/pg.sh; edits are overwritten on the next 'up'.
# TYPE  DATABASE  USER         ADDRESS         METHOD
local   all       postgres     peer map=keeper
host    all       $APP_ROLE    127.0.0.1/32    scram-sha-256
EOF
    as_cluster tee "$DATA_DIR/pg_ident.conf" >/dev/null <<EOF
# Managed by infra/postgres/pg.sh: the cluster's OS user may log in as the superuser.
keeper  $CLUSTER_USER  postgres
EOF
}

admin_psql() {
    as_cluster "$BIN_DIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$RUN_DIR" -p "$PG_PORT" -U postgres "$@"
}

ensure_role_and_db() {
    admin_psql -d postgres >/dev/null <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP_ROLE') THEN
        CREATE ROLE $APP_ROLE LOGIN;
    END IF;
END
\$\$;
ALTER ROLE $APP_ROLE LOGIN CREATEDB PASSWORD '$APP_PASSWORD';
SQL
    local exists
    exists="$(admin_psql -d postgres -tA <<<"SELECT 1 FROM pg_database WHERE datname = '$APP_DB'")"
    if [[ "$exists" != 1 ]]; then
        admin_psql -d postgres <<<"CREATE DATABASE $APP_DB OWNER $APP_ROLE"
    fi
}

wait_healthy() {
    local deadline=$((SECONDS + WAIT_S))
    until answers; do
        ((SECONDS < deadline)) || fail_with_log "not answering on $PG_HOST:$PG_PORT after ${WAIT_S}s"
        is_running || fail_with_log "server exited during start-up"
        sleep 0.5
    done
}

cmd_up() {
    require_bins
    if external_url; then
        external_up
        return 0
    fi
    prepare_state_dir
    if is_running; then
        wait_healthy
        ensure_role_and_db || fail_with_log "could not ensure role/database"
        say "already running on $PG_HOST:$PG_PORT (logs: $LOG_FILE)"
        return 0
    fi
    init_cluster
    write_config
    as_cluster "$BIN_DIR/pg_ctl" start -D "$DATA_DIR" -l "$LOG_FILE" -w -t "$WAIT_S" -s \
        || fail_with_log "pg_ctl start failed"
    wait_healthy
    ensure_role_and_db || fail_with_log "could not ensure role/database"
    say "healthy on $PG_HOST:$PG_PORT (logs: $LOG_FILE)"
}

cmd_down() {
    if external_url; then
        say "DATABASE_URL points at $URL_HOST:$URL_PORT, which is not ours; nothing to stop"
        return 0
    fi
    BIN_DIR="$(find_bin_dir)"
    locate_state_dir
    if [[ -z "$BIN_DIR" ]] || ! is_running; then
        say "not running"
        return 0
    fi
    as_cluster "$BIN_DIR/pg_ctl" stop -D "$DATA_DIR" -m fast -w -t "$WAIT_S" -s \
        || fail_with_log "pg_ctl stop failed"
    say "stopped"
}

cmd_status() {
    BIN_DIR="$(find_bin_dir)"
    [[ -n "$BIN_DIR" ]] || { say "not installed (run '$0 install')"; exit 3; }
    if external_url; then
        if "$BIN_DIR/pg_isready" -q -h "$URL_HOST" -p "$URL_PORT" ${URL_USER:+-U "$URL_USER"} -t 2; then
            say "healthy on $URL_HOST:$URL_PORT (external server from DATABASE_URL)"
            return 0
        fi
        say "external server $URL_HOST:$URL_PORT from DATABASE_URL does not answer"
        exit 3
    fi
    locate_state_dir
    if is_running && answers; then
        say "healthy on $PG_HOST:$PG_PORT (data: $DATA_DIR, logs: $LOG_FILE)"
        return 0
    fi
    say "not running (data: $DATA_DIR)"
    exit 3
}

cmd_psql() {
    require_bins
    if external_url; then
        ext_psql -d "$URL_DB" "$@"
        return
    fi
    PGPASSWORD="$APP_PASSWORD" exec "$BIN_DIR/psql" -X -h "$PG_HOST" -p "$PG_PORT" \
        -U "$APP_ROLE" -d "$APP_DB" "$@"
}

main() {
    local cmd="${1:-}"
    shift || true
    case "$cmd" in
        install) cmd_install ;;
        up) cmd_up ;;
        down) cmd_down ;;
        status) cmd_status ;;
        psql) cmd_psql "$@" ;;
        *)
            echo "usage: $0 {install|up|down|status|psql [args...]}" >&2
            exit 2
            ;;
    esac
}

main "$@"
