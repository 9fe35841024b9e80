#!/usr/bin/env bash
# Builds Argo CD (module platform/k8s/argocd) into a cache of its own for the GitOps tests
# (test/node/argocd.test.ts): its one `argocd` binary, linked under the names it dispatches on
# (the application controller and the repo server; no UI, no API server); from the module, its
# Application and AppProject CRDs, the config objects an install starts with, and the two wrapper
# scripts its repo server runs; and redis from Debian (unpacked, not installed).
# The cache is keyed by the module files and the pins in platform/k8s/argocd/argocd.env, not by this
# script's text.
# Idempotent: a cache whose key matches is reused as it is.
#   scripts/argocd.sh          build if needed, then print the cache directory
#   scripts/argocd.sh --dir    print the cache directory only (no build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mod="$root/platform/k8s/argocd"
# shellcheck source=/dev/null
. "$mod/argocd.env"

ARGOCD_VERSION=$(awk '$1 == "github.com/argoproj/argo-cd/v3" {print $2; exit} $1 == "require" && $2 == "github.com/argoproj/argo-cd/v3" {print $3; exit}' "$mod/go.mod")
pins_hash=$(cat "$mod/go.mod" "$mod/go.sum" "$mod/tools.go" "$mod/argocd.env" | sha256sum | cut -c1-12)
cache_root="${PIPELINE_SIDECARS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pipeline-sidecars}"
out="$cache_root/argocd-${ARGOCD_VERSION}-${pins_hash}"
if [ "${1:-}" = "--dir" ]; then echo "$out"; exit 0; fi
if [ -f "$out/.complete" ]; then echo "$out"; exit 0; fi

say() { printf '[argocd] %s\n' "$*" >&2; }
# shellcheck source=lib/private-apt.sh
. "$root/scripts/lib/private-apt.sh"
need() { command -v "$1" >/dev/null 2>&1 || { say "missing '$1': $2"; exit 1; }; }
need go "install Go >= 1.26 (it fetches the $ARGOCD_GO_TOOLCHAIN toolchain itself)"
need git "install git (Argo CD's repo server runs it)"
need apt-get "this script fetches redis from Debian's archive; run it on Debian or Ubuntu"
need dpkg "install dpkg (packages are unpacked with dpkg -x)"
[ -n "$ARGOCD_VERSION" ] || { say "no github.com/argoproj/argo-cd/v3 requirement in $mod/go.mod"; exit 1; }
mkdir -p "$out/bin"
started=$(date +%s)
say "building Argo CD $ARGOCD_VERSION into $out (first time on this machine; later runs reuse it)"

# --- redis: bookworm's redis-tools (it holds redis-server) and its libraries, with a private apt state.
if [ ! -f "$out/redis/.complete" ]; then
  apt_dir="$out/apt"
  # shellcheck disable=SC2086
  private_apt_download "$apt_dir" bookworm "$apt_dir/debs" $ARGOCD_REDIS_DEBIAN_BOOKWORM
  rm -rf "$out/redis"; mkdir -p "$out/redis"
  for deb in "$apt_dir"/debs/*.deb; do dpkg -x "$deb" "$out/redis"; done
  # One redis binary serves and checks files, chosen by the name it runs under; Debian's redis-server
  # package is only this link (and a systemd unit, which is not wanted here).
  ln -sfn redis-check-rdb "$out/redis/usr/bin/redis-server"
  touch "$out/redis/.complete"
fi
# The libraries redis links come from the unpacked packages, ahead of the system's.
redis_env=(env "LD_LIBRARY_PATH=$out/redis/usr/lib/x86_64-linux-gnu")
redis_version=$("${redis_env[@]}" "$out/redis/usr/bin/redis-server" --version) || { say "redis-server does not run"; exit 1; }
say "redis: $redis_version"

# --- Argo CD: one binary; cmd/main.go picks the component from the name it runs under.
if [ ! -x "$out/bin/argocd" ]; then
  pkg=github.com/argoproj/argo-cd/v3/common
  ldflags="-s -w -X $pkg.version=${ARGOCD_VERSION#v} -X $pkg.gitTag=$ARGOCD_VERSION -X $pkg.gitTreeState=clean"
  say "argocd $ARGOCD_VERSION: go build with $ARGOCD_GO_TOOLCHAIN, -p ${BUILD_JOBS:-2} (about 13 minutes on 2 cores, first time only)"
  (cd "$mod" && GOTOOLCHAIN="$ARGOCD_GO_TOOLCHAIN" CGO_ENABLED=0 nice -n "${BUILD_NICE:-10}" \
      go build -v -p "${BUILD_JOBS:-2}" -trimpath -ldflags "$ldflags" -o "$out/bin/argocd.tmp" github.com/argoproj/argo-cd/v3/cmd) 2>&1 \
    | awk '{n++; if (n % 200 == 0) printf "[argocd]   ... %d packages compiled\n", n > "/dev/stderr"}'
  [ "${PIPESTATUS[0]}" -eq 0 ] || { say "go build of argocd failed"; exit 1; }
  mv "$out/bin/argocd.tmp" "$out/bin/argocd"
fi
for name in argocd-application-controller argocd-repo-server; do ln -sfn argocd "$out/bin/$name"; done

# --- From Argo CD's manifests: the CRDs the controller needs (no ApplicationSet: its controller is
# not run) and the config objects an install starts with (argocd-cm carries Argo CD's default
# resource exclusions and ignore rules).
dir=$(cd "$mod" && GOTOOLCHAIN="$ARGOCD_GO_TOOLCHAIN" go mod download -json "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
[ -d "$dir/manifests" ] || { say "no manifests/ in Argo CD's module ($dir)"; exit 1; }
rm -rf "$out/crds" "$out/config"; mkdir -p "$out/crds" "$out/config"
cp "$dir/manifests/crds/application-crd.yaml" "$dir/manifests/crds/appproject-crd.yaml" "$out/crds/"
cp "$dir/manifests/base/config/argocd-cm.yaml" "$dir/manifests/base/config/argocd-rbac-cm.yaml" "$dir/manifests/base/config/argocd-secret.yaml" "$out/config/"
# The repo server runs these beside git, from PATH, as Argo CD's image has them in /usr/local/bin
# (it checks every commit's signature with git-verify-wrapper.sh, signed or not).
cp "$dir/hack/git-verify-wrapper.sh" "$dir/hack/gpg-wrapper.sh" "$out/bin/"
chmod u+w,a+x "$out"/bin/*.sh
chmod u+w "$out"/crds/*.yaml "$out"/config/*.yaml

say "$(HOME="$out" "$out/bin/argocd" version --client --short)"
touch "$out/.complete"
say "done in $(( $(date +%s) - started )) s ($(du -sh "$out" | cut -f1) in $out)"
echo "$out"
