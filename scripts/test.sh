#!/usr/bin/env bash
# Install what the tests need, start a throwaway PostgreSQL and Redis on free loopback ports,
# run ruff and the whole suite, and stop the servers even when tests fail.
# TEST_DATABASE_URL / TEST_REDIS_URL, when set, are used instead of starting servers.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
start_services

log "ruff"
"$PYTHON" -m ruff check .
log "deployment checks (kustomize, kubernetes-validate, checkov, hadolint, yamllint, promtool)"
bash scripts/check-deploy.sh
log "pytest"
"$PYTHON" -m pytest "$@"
