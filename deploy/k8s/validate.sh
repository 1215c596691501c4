#!/bin/sh
# Check the Kubernetes manifests offline, with the real tools (deploy/install-tools.sh):
#   1. kustomize renders the base and the production overlay (what `kubectl apply -k` sends);
#   2. kubernetes-validate --strict checks every object against the Kubernetes schemas of the
#      oldest and newest versions we support (unknown or misspelt fields fail);
#   3. checkov scans the production rendering; a finding fails unless the manifest skips it
#      with a reason (a `checkov.io/skipN` annotation).
# Writes the renderings to $OUT (default: a temporary folder) for tests/test_deploy_manifests.py.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tools=${LEADERBOARD_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/leaderboard-deploy-tools}
PATH="$tools/npm/node_modules/.bin:$tools/venv/bin:$PATH"
OLDEST=${K8S_OLDEST:-1.30.0}
NEWEST=${K8S_NEWEST:-1.37.0}
if [ -n "${OUT:-}" ]; then
  out=$OUT
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"

for tool in kustomize kubernetes-validate checkov; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool not found: run deploy/install-tools.sh" >&2; exit 2; }
done

for target in base overlays/production; do
  name=$(basename "$target")
  kustomize build "$here/$target" > "$out/$name.yaml"
  for version in "$OLDEST" "$NEWEST"; do
    kubernetes-validate --strict --quiet -k "$version" "$out/$name.yaml"
  done
  echo "k8s $target: $(grep -c '^kind:' "$out/$name.yaml") objects valid against Kubernetes $OLDEST and $NEWEST"
done

mkdir -p "$out/scan"
cp "$out/production.yaml" "$out/scan/"
# --skip-download and BC_SKIP_MAPPING: offline, no call to the vendor's service.
BC_SKIP_MAPPING=TRUE checkov --directory "$out/scan" --framework kubernetes --compact --quiet \
  --skip-download --output cli
echo "k8s production: checkov clean (justified skips are annotated in the manifests)"
