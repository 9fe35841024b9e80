#!/usr/bin/env bash
# Fetches etcd and builds kube-apiserver, kube-controller-manager, kube-scheduler and kwok into a
# cache outside the repo, then Tekton Pipelines' controller and webhook (and a copy of Tekton's own
# config/: CRDs, ConfigMaps, webhook configurations) into a sibling cache keyed by Tekton's pins.
# Idempotent: a cache whose pins match is reused as it is.
#   scripts/control-plane.sh          build if needed, then print the control-plane cache directory
#   scripts/control-plane.sh --dir    print the control-plane cache directory only (no build)
#   scripts/control-plane.sh --tekton-dir   print Tekton's cache directory only (no build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
k8s="$root/platform/k8s"
# shellcheck source=/dev/null
. "$k8s/versions.env"
# shellcheck source=lib/k8s-ldflags.sh
. "$root/scripts/lib/k8s-ldflags.sh"

pins_hash=$(cat "$k8s/versions.env" "$k8s/control-plane/go.mod" "$k8s/control-plane/go.sum" \
  "$k8s/kwok/go.mod" "$k8s/kwok/go.sum" | sha256sum | cut -c1-12)
cache_root="${PIPELINE_SIDECARS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pipeline-sidecars}"
out="$cache_root/k8s-${K8S_VERSION}-${pins_hash}"
# Tekton's version is the one its module requires (one pin, in platform/k8s/tekton/go.mod).
TEKTON_VERSION=$(awk '{for (i = 1; i < NF; i++) if ($i == "github.com/tektoncd/pipeline") print $(i+1)}' "$k8s/tekton/go.mod")
tekton_hash=$(cat "$k8s/tekton/go.mod" "$k8s/tekton/go.sum" "$k8s/tekton/tools.go" | sha256sum | cut -c1-12)
tekton_out="$cache_root/tekton-${TEKTON_VERSION}-${tekton_hash}"
if [ "${1:-}" = "--dir" ]; then echo "$out"; exit 0; fi
if [ "${1:-}" = "--tekton-dir" ]; then echo "$tekton_out"; exit 0; fi

say() { printf '[control-plane] %s\n' "$*" >&2; }
# Tekton Pipelines: controller and webhook from the pinned module (platform/k8s/tekton), and its config/.
build_tekton() {
  [ -f "$tekton_out/.complete" ] && return 0
  local started dir
  started=$(date +%s)
  mkdir -p "$tekton_out/bin" "$tekton_out/build"
  say "tekton $TEKTON_VERSION: go build of controller, webhook and resolvers into $tekton_out (about 6 minutes on 2 cores, first time only)"
  (cd "$k8s/tekton" && go build -v -p "${BUILD_JOBS:-$(nproc)}" -trimpath -ldflags "-s -w" -o "$tekton_out/build/" \
      github.com/tektoncd/pipeline/cmd/controller github.com/tektoncd/pipeline/cmd/webhook github.com/tektoncd/pipeline/cmd/resolvers) 2>&1 \
    | awk '{n++; if (n % 200 == 0) printf "[control-plane]   ... %d tekton packages compiled\n", n > "/dev/stderr"}'
  [ "${PIPESTATUS[0]}" -eq 0 ] || { say "go build of tekton failed"; exit 1; }
  mv "$tekton_out/build/controller" "$tekton_out/bin/tekton-controller"
  mv "$tekton_out/build/webhook" "$tekton_out/bin/tekton-webhook"
  mv "$tekton_out/build/resolvers" "$tekton_out/bin/tekton-resolvers"
  rmdir "$tekton_out/build"
  dir=$(cd "$k8s/tekton" && go mod download -json "github.com/tektoncd/pipeline@${TEKTON_VERSION}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  rm -rf "$tekton_out/config" && cp -r "$dir/config" "$tekton_out/config" && chmod -R u+w "$tekton_out/config"
  touch "$tekton_out/.complete"
  say "tekton: built in $(( $(date +%s) - started )) s"
}
# kwok's own "fast" pod stages, which the harness extends (a never-ready image for start-up failure tests).
copy_kwok_stages() {
  [ -f "$out/kwok-stages/node-initialize.yaml" ] && return 0
  local dir
  dir=$(cd "$k8s/kwok" && go mod download -json "sigs.k8s.io/kwok@${KWOK_VERSION}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  mkdir -p "$out/kwok-stages"
  cp "$dir"/kustomize/stage/pod/fast/pod-*.yaml "$dir"/kustomize/stage/node/fast/node-*.yaml \
    "$dir"/kustomize/stage/node/heartbeat-with-lease/node-*.yaml "$out/kwok-stages/"
  chmod u+w "$out"/kwok-stages/*.yaml
}
if [ -f "$out/.complete" ]; then copy_kwok_stages; build_tekton; echo "$out"; exit 0; fi

need() { command -v "$1" >/dev/null 2>&1 || { say "missing '$1': $2"; exit 1; }; }
# shellcheck source=lib/private-apt.sh
. "$root/scripts/lib/private-apt.sh"
need go "install Go >= 1.26 (https://go.dev/doc/install, or Debian's golang-go from a suite that has 1.26)"
need apt-get "this script fetches etcd from Debian's archive with apt-get download; run it on Debian or Ubuntu"
need dpkg "install dpkg (it unpacks the etcd package with dpkg -x)"
mkdir -p "$out/bin"
started=$(date +%s)
say "building the local control plane into $out (first time on this machine; later runs reuse it)"

# --- etcd: Debian's etcd-server from sid, downloaded with a private apt state, unpacked, not installed.
if [ ! -x "$out/bin/etcd" ]; then
  apt_dir="$out/apt"
  mkdir -p "$apt_dir/unpacked"
  if [ -n "${ETCD_DEB:-}" ]; then deb="$ETCD_DEB"; else
    private_apt_download "$apt_dir" "$ETCD_DEBIAN_SUITE" "$apt_dir" "$ETCD_DEBIAN_PACKAGE"
    deb=$(ls "$apt_dir"/"${ETCD_DEBIAN_PACKAGE}"_*.deb | head -1)
  fi
  dpkg -x "$deb" "$apt_dir/unpacked"
  etcd_bin=$(find "$apt_dir/unpacked" -type f -name etcd -perm -u+x | head -1)
  [ -n "$etcd_bin" ] || { say "no etcd binary inside $deb"; exit 1; }
  cp "$etcd_bin" "$out/bin/etcd"
  say "etcd: $("$out/bin/etcd" --version | head -1)"
fi

# --- kube-apiserver, kube-controller-manager, kube-scheduler: one go build, so shared packages compile once.
if [ ! -x "$out/bin/kube-apiserver" ] || [ ! -x "$out/bin/kube-controller-manager" ] || [ ! -x "$out/bin/kube-scheduler" ]; then
  ldflags=$(k8s_ldflags "$K8S_VERSION")
  jobs=${BUILD_JOBS:-$(nproc)}
  say "kubernetes $K8S_VERSION: go build of 3 commands with -p $jobs (about 10-20 minutes on 2 cores; progress below)"
  (cd "$k8s/control-plane" && go build -v -p "$jobs" -trimpath -ldflags "$ldflags" -o "$out/bin/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler) 2>&1 \
    | awk '{n++; if (n % 200 == 0) printf "[control-plane]   ... %d packages compiled\n", n > "/dev/stderr"}'
  [ "${PIPESTATUS[0]}" -eq 0 ] || { say "go build of kubernetes failed"; exit 1; }
fi

if [ ! -x "$out/bin/kwok" ]; then
  say "kwok $KWOK_VERSION: go build"
  (cd "$k8s/kwok" && go build -p "${BUILD_JOBS:-$(nproc)}" -trimpath -ldflags "-s -w" -o "$out/bin/kwok" sigs.k8s.io/kwok/cmd/kwok)
fi

copy_kwok_stages
"$out/bin/kube-apiserver" --version >&2
touch "$out/.complete"
say "control plane done in $(( $(date +%s) - started )) s"
build_tekton
echo "$out"
