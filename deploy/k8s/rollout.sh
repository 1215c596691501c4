#!/bin/sh
# Roll the leaderboard out on Kubernetes: migrations first, then the new pods.
#   deploy/k8s/rollout.sh [OVERLAY]        (default: deploy/k8s/overlays/production)
# 1. render the overlay once (kubectl's built-in kustomize), so every step uses the same image;
# 2. replace the migration Job (a Job's pod template is immutable) and wait for it to complete;
# 3. apply everything else and wait for the Deployment's rolling update (maxUnavailable 0).
# Needs kubectl with access to the cluster and the Secrets leaderboard-secrets and (unless
# cert-manager issues it) leaderboard-tls in the namespace; docs/operations.md §1b.
set -eu
overlay=${1:-$(dirname "$0")/overlays/production}
namespace=leaderboard
rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
kubectl kustomize "$overlay" > "$rendered"

# The namespace, its policies, config and account must exist before the Job can run.
kubectl apply -f "$rendered" --selector 'app.kubernetes.io/component notin (api,reconcile,migrate)'
kubectl -n "$namespace" delete job leaderboard-migrate --ignore-not-found --wait=true
# The Job and its network policy.
kubectl apply -f "$rendered" --selector 'app.kubernetes.io/component=migrate'
if ! kubectl -n "$namespace" wait --for=condition=complete job/leaderboard-migrate --timeout=600s; then
  kubectl -n "$namespace" logs job/leaderboard-migrate --tail=50 >&2 || true
  echo "migrations failed: the running pods are untouched" >&2
  exit 1
fi

kubectl apply -f "$rendered"
kubectl -n "$namespace" rollout status deployment/leaderboard --timeout=600s
