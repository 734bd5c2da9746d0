#!/usr/bin/env bash
# Run benchmarks against a throwaway PostgreSQL and Redis: scripts/bench.sh [NAME ...] [-- args]
# With no NAME, every benchmark. Results are printed and written into docs/benchmarks.md.
# Benchmarks need only the bot's own dependencies (the `run` environment of scripts/venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
LOG_TAG=bench
source scripts/lib.sh
source scripts/services.sh
bash scripts/venv.sh run
start_services
.venv/bin/python -m bench "$@"
