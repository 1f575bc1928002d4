#!/usr/bin/env bash
# Install the Debian packages Keeper needs on this machine, and only those that are missing:
# Python 3.11 with venv, a Java 17 runtime and Maven (for the Kafka broker jars),
# PostgreSQL, Chromium (payment form e2e tests), Prometheus (promtool checks the alert
# rules), and a compose client to validate
# docker-compose.yml. Needs root (or sudo) when something is missing; a no-op otherwise.
set -euo pipefail

missing=()
command -v python3.11 >/dev/null || missing+=(python3.11 python3.11-venv)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v runuser >/dev/null || missing+=(util-linux)
# Headless browser for the payment form's end-to-end tests (Playwright drives it through
# executable_path; `playwright install` downloads nothing here).
command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || missing+=(chromium)
# Prometheus (`make observe`) and its promtool, which CI uses to check the alert rules.
command -v promtool >/dev/null || missing+=(prometheus)
# Only to validate docker-compose.yml (`docker-compose config`); no engine is needed.
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 \
  || missing+=(docker-compose)

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all present"
  exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
