#!/usr/bin/env bash
# make test: install the dev environment (.venv), then run ruff, mypy, the deployment checks and
# pytest (against a throwaway PostgreSQL and Redis), each whatever the others gave, and end with
# one line
#   summary: ruff ok, mypy ok, deploy checks FAILED, pytest ok
# exiting 1 when any step failed. TEST_DATABASE_URL / TEST_REDIS_URL, when set, are used instead
# of starting servers. Arguments go to pytest (make test PYTEST_ARGS="tests/unit -x").
set -uo pipefail
cd "$(dirname "$0")/.."
LOG_TAG=test
source scripts/lib.sh
source scripts/services.sh

bash scripts/venv.sh dev || { log "could not install the test environment"; exit 2; }

pytest_with_services() {
  start_services || { log "could not start PostgreSQL and Redis"; return 1; }
  # The deploy checks' pinned kubectl renders the manifests in tests/deploy too.
  PATH=$DEPLOY_TOOLS/bin:$PATH .venv/bin/python -m pytest "$@"
}

# The browser tests (tests/browser) drive Debian's chromium through Playwright, which downloads
# no browser here: install it once (root or sudo) when it is missing. Under make test they fail
# rather than skip without it (REQUIRE_CHROMIUM).
if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium || log "could not install chromium: the browser tests will fail"
fi
export REQUIRE_CHROMIUM=1
# The TLS Redis test makes its certificate with the openssl command.
if ! command -v openssl >/dev/null 2>&1; then
  apt_install openssl || log "could not install openssl: the TLS Redis test will fail"
fi

step ruff .venv/bin/ruff check .
# What it checks, and how strictly, is in pyproject.toml ([tool.mypy]).
step mypy .venv/bin/mypy
step "deploy checks" bash scripts/check-deploy.sh
step pytest pytest_with_services "$@"

echo "summary: $(steps_summary)"
exit "$STEP_STATUS"
