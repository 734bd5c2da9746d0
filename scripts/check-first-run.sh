#!/usr/bin/env bash
# CI: a newcomer's first hour with Debian's own python3 (externally managed, PEP 668) first on
# PATH, in a clean clone of this repository's HEAD (commit first to check local changes):
#   1. `make run` with a console script piped in: .venv is made from Debian's python3 and the bot
#      answers /balance;
#   2. `make deps`, the install part of `make test`;
#   3. nothing landed in Debian's python: no discord module, its site-packages unchanged;
#   4. a second `make run` reaches the console without installing anything (timed).
# Installs Debian's python3 with apt when missing (root or sudo); python3-venv, when missing, is
# left for `make run` to install, as it would on a newcomer's machine.
set -euo pipefail
cd "$(dirname "$0")/.."
LOG_TAG=first-run
source scripts/lib.sh

export PATH=/usr/bin:/bin:/usr/sbin:/sbin
[ -x /usr/bin/python3 ] || apt_install python3
# Longest a second start may take: it installs nothing, so this only catches a reinstall or a hang.
SECOND_RUN_MAX_S=${SECOND_RUN_MAX_S:-10}

WORK=$(mktemp -d /tmp/guildbot-first-run.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
CLONE=$WORK/guildbot
git clone --quiet "$PWD" "$CLONE"
log "clone of $(git -C "$CLONE" rev-parse --short HEAD) in $CLONE; python3 is $(python3 -V 2>&1) at $(command -v python3)"

debian_site_packages() {
  /usr/bin/python3 - <<'PY'
import os, site
for folder in [*site.getsitepackages(), site.getusersitepackages()]:
    if os.path.isdir(folder):
        print(folder, sorted(os.listdir(folder)))
PY
}
debian_before=$(debian_site_packages)

# run_console N: `make run` with a two-line console script; its output in $WORK/run-N.log.
run_console() {
  printf '/balance\nquit\n' | timeout 600 make --no-print-directory -C "$CLONE" run >"$WORK/run-$1.log" 2>&1 \
    || { cat "$WORK/run-$1.log" >&2; log "FAILED: make run ($1)"; return 1; }
  grep -q "You hold 0 coins." "$WORK/run-$1.log" \
    || { cat "$WORK/run-$1.log" >&2; log "FAILED: the bot did not answer /balance ($1)"; return 1; }
}
INSTALLER="installing the locked dependencies"

log "make run (first: makes .venv)"
run_console 1
grep -q "$INSTALLER" "$WORK/run-1.log" || { log "FAILED: the first make run installed nothing"; exit 1; }
venv_python=$(readlink -f "$CLONE/.venv/bin/python")
case $venv_python in
  /usr/bin/python3*) log ".venv runs on $venv_python" ;;
  *) log "FAILED: .venv runs on $venv_python, not Debian's python3"; exit 1 ;;
esac

log "make deps"
make --no-print-directory -C "$CLONE" deps >"$WORK/deps.log" 2>&1 \
  || { cat "$WORK/deps.log" >&2; log "FAILED: make deps"; exit 1; }
"$CLONE/.venv/bin/python" -c 'import pytest, hypothesis' \
  || { log "FAILED: make deps did not install the test tools"; exit 1; }

if /usr/bin/python3 -c 'import discord' 2>/dev/null; then
  log "FAILED: discord.py is importable from Debian's python3"
  exit 1
fi
if [ "$(debian_site_packages)" != "$debian_before" ]; then
  diff <(echo "$debian_before") <(debian_site_packages) >&2 || true
  log "FAILED: Debian's site-packages changed"
  exit 1
fi

log "make run (second: reuses .venv)"
start=$(date +%s%N)
run_console 2
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
if grep -q "$INSTALLER" "$WORK/run-2.log"; then
  cat "$WORK/run-2.log" >&2
  log "FAILED: the second make run installed again"
  exit 1
fi
if [ "$elapsed_ms" -gt $((SECOND_RUN_MAX_S * 1000)) ]; then
  log "FAILED: the second make run took ${elapsed_ms} ms (more than ${SECOND_RUN_MAX_S} s)"
  exit 1
fi
log "first run ok: the bot answered on Debian's python3; second make run in ${elapsed_ms} ms, nothing installed"
