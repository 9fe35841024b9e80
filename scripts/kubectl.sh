#!/usr/bin/env bash
# Builds kubectl at the control plane's Kubernetes version (module platform/k8s/kubectl) into a cache of
# its own, for the tests that install the bundle as a user does (`kubectl apply --server-side`).
# A cache apart from the control plane's, so that adding kubectl did not change that cache's key.
#   scripts/kubectl.sh          build if needed, then print the kubectl path
#   scripts/kubectl.sh --path   print the kubectl path only (no build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
k8s="$root/platform/k8s"
# shellcheck source=/dev/null
. "$k8s/versions.env"
# shellcheck source=lib/k8s-ldflags.sh
. "$root/scripts/lib/k8s-ldflags.sh"
pins_hash=$(cat "$k8s/versions.env" "$k8s/kubectl/go.mod" "$k8s/kubectl/go.sum" | sha256sum | cut -c1-12)
cache_root="${PIPELINE_SIDECARS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pipeline-sidecars}"
out="$cache_root/kubectl-${K8S_VERSION}-${pins_hash}"
if [ "${1:-}" = "--path" ]; then echo "$out/kubectl"; exit 0; fi
if [ -x "$out/kubectl" ]; then echo "$out/kubectl"; exit 0; fi
command -v go >/dev/null 2>&1 || { echo "[kubectl] missing 'go': install Go >= 1.26" >&2; exit 1; }
ldflags=$(k8s_ldflags "$K8S_VERSION")
started=$(date +%s)
echo "[kubectl] kubectl $K8S_VERSION: go build into $out (about 30 s after the control plane's build, a few minutes cold)" >&2
mkdir -p "$out"
(cd "$k8s/kubectl" && nice -n "${BUILD_NICE:-10}" go build -p "${BUILD_JOBS:-$(nproc)}" -trimpath -ldflags "$ldflags" -o "$out/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl)
mv "$out/kubectl.tmp" "$out/kubectl"
echo "[kubectl] built in $(( $(date +%s) - started )) s" >&2
echo "$out/kubectl"
