#!/usr/bin/env bash
# Run benchmarks against a throwaway PostgreSQL and Redis: scripts/bench.sh [NAME ...] [-- args]
# With no NAME, every benchmark. Results are printed and written into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
start_services
"$PYTHON" -m bench "$@"
