# Sourced by the scripts beside it: logging, Debian packages, the Python interpreter and uv.
# Nothing here installs into the system's Python: uv lives in its own directory under the cache,
# and the project's packages in .venv (scripts/venv.sh).

# The uv release every script uses (it reads and writes uv.lock). Bump it with the lock.
UV_VERSION=0.13.9
CACHE_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/guildbot
UV=$CACHE_DIR/uv-$UV_VERSION/uv
# The deployment checks' tools (scripts/check-deploy.sh); bin/ holds only their kubectl.
DEPLOY_TOOLS=${GUILDBOT_TOOLS_DIR:-$CACHE_DIR/deploy-tools}
# The interpreter .venv and the tool environments are made from: the first python3 on PATH
# unless PYTHON names another (uv is always given its path, and never downloads one).
PYTHON=${PYTHON:-python3}
# uv trusts the certificates the machine trusts (as apt, git and Debian's pip do), not only its
# own bundled roots: needed behind a TLS-inspecting proxy whose CA is installed system-wide.
if [ -r /etc/ssl/certs/ca-certificates.crt ]; then export UV_SYSTEM_CERTS=${UV_SYSTEM_CERTS:-1}; fi

log() { printf '[%s] %s\n' "${LOG_TAG:-scripts}" "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    log "need root or sudo for: $*"
    return 1
  fi
}

# apt_install PKG...: install Debian packages (root, or sudo), refreshing the package lists only
# when the first attempt fails.
apt_install() {
  log "installing Debian packages: $*"
  command -v apt-get >/dev/null 2>&1 || { log "apt-get not found: install $* by hand"; return 1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 && return 0
  as_root apt-get update -qq >/dev/null \
    && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# find_python: set PYTHON_EXE to the real path of $PYTHON (3.11 or 3.12), installing Debian's
# python3 when there is none at all.
find_python() {
  if ! command -v "$PYTHON" >/dev/null 2>&1; then
    if [ "$PYTHON" != python3 ] || ! apt_install python3 python3-venv; then
      log "$PYTHON not found: install Python 3.11"
      return 1
    fi
  fi
  PYTHON_EXE=$("$PYTHON" -c 'import sys; print(sys.executable)') || return 1
  if ! "$PYTHON_EXE" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 13))'; then
    log "$PYTHON_EXE is $("$PYTHON_EXE" -V 2>&1): the bot needs Python 3.11 or 3.12 (set PYTHON=...)"
    return 1
  fi
}

# ensure_uv: make $UV, the pinned uv, available. It is installed with pip into a throwaway
# virtualenv, and only its self-contained binary is kept. Debian's python3 needs python3-venv
# (ensurepip) for that virtualenv: installed with apt when missing.
ensure_uv() {
  [ -x "$UV" ] && return 0
  find_python || return 1
  log "installing uv $UV_VERSION into $(dirname "$UV")"
  local tmp; tmp=$(mktemp -d)
  if ! "$PYTHON_EXE" -m venv "$tmp/venv" >/dev/null 2>&1; then
    case $PYTHON_EXE in
      /usr/bin/python3*) apt_install python3-venv || { rm -rf "$tmp"; return 1; } ;;
      *) log "$PYTHON_EXE cannot make a virtualenv"; rm -rf "$tmp"; return 1 ;;
    esac
    rm -rf "$tmp/venv"
    "$PYTHON_EXE" -m venv "$tmp/venv" || { rm -rf "$tmp"; return 1; }
  fi
  if ! "$tmp/venv/bin/pip" install --disable-pip-version-check "uv==$UV_VERSION" >"$tmp/pip.log" 2>&1; then
    cat "$tmp/pip.log" >&2
    rm -rf "$tmp"
    return 1
  fi
  mkdir -p "$(dirname "$UV")"
  # A rename, so that two runs at once never see half a binary.
  mv "$tmp/venv/bin/uv" "$UV.$$" && mv -f "$UV.$$" "$UV"
  rm -rf "$tmp"
}

# join_by SEP WORD...: the words joined by SEP.
join_by() {
  local sep=$1 out=$2 word
  shift 2
  for word in "$@"; do out+=$sep$word; done
  printf '%s\n' "$out"
}

# step NAME COMMAND...: run one step of a run whose steps all run whatever the others gave,
# recording "NAME ok" or "NAME FAILED" in STEPS (STEP_STATUS becomes 1 on a failure);
# steps_summary prints them on one line.
STEPS=()
STEP_STATUS=0
step() {
  local name=$1
  shift
  log "$name"
  if "$@"; then
    STEPS+=("$name ok")
  else
    STEPS+=("$name FAILED")
    STEP_STATUS=1
  fi
}
steps_summary() { join_by ", " "${STEPS[@]}"; }
