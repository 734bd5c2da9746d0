#!/usr/bin/env bash
# The project's virtual environment, .venv, made by uv from uv.lock (every package pinned).
# Nothing is installed into the system's Python.
#
#   bash scripts/venv.sh run    the bot and its dependencies (make run, make bench)
#   bash scripts/venv.sh dev    also the `dev` dependency group: test and lint tools (make deps, make test)
#   bash scripts/venv.sh lock   re-resolve uv.lock and scripts/deploy-tools.txt after editing
#                               pyproject.toml or scripts/deploy-tools.in (make lock)
#
# .venv is made from $PYTHON (default: the first python3 on PATH) and synced only when uv.lock,
# pyproject.toml, the interpreter or the checkout's path changed since the last sync: a stamp per
# profile in .venv records it. So a second `make run` installs nothing and starts at once, and
# the line "installing the locked dependencies" appears only when something is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
LOG_TAG=venv
source scripts/lib.sh

VENV=$PWD/.venv
export UV_PROJECT_ENVIRONMENT=$VENV
profile=${1:?usage: scripts/venv.sh run|dev|lock}

ensure_uv
find_python

if [ "$profile" = lock ]; then
  "$UV" lock --python "$PYTHON_EXE"
  "$UV" pip compile --quiet --universal --python-version 3.11 \
    scripts/deploy-tools.in -o scripts/deploy-tools.txt
  exit 0
fi

key=$({ cat uv.lock pyproject.toml; echo "$PYTHON_EXE $PWD"; } | sha256sum | cut -c1-16)
stamp_ok() { [ "$(cat "$VENV/.synced-$1" 2>/dev/null)" = "$key" ]; }

case $profile in
  # The dev environment holds everything the bot needs: either stamp will do for `run`.
  run) if stamp_ok run || stamp_ok dev; then exit 0; fi
       # --inexact: keep the dev tools a `make test` may have installed.
       args=(--no-dev --inexact) ;;
  dev) if stamp_ok dev; then exit 0; fi
       args=() ;;
  *) log "unknown profile $profile: run, dev or lock"; exit 2 ;;
esac

log "installing the locked dependencies ($profile) into $VENV with $PYTHON_EXE"
rm -f "$VENV/.synced-run" "$VENV/.synced-dev"
# --locked: refuse a uv.lock that no longer matches pyproject.toml (run `make lock`).
# --compile-bytecode: every start would otherwise compile the dependencies again wherever
# PYTHONDONTWRITEBYTECODE is set (or site-packages is read-only).
"$UV" sync --locked --compile-bytecode --python "$PYTHON_EXE" "${args[@]}"
echo "$key" >"$VENV/.synced-$profile"
