#!/usr/bin/env bash
# Builds the real-node tier into a cache outside the repo: kubelet and kube-proxy (platform/k8s/node),
# CoreDNS (platform/k8s/coredns), kube-router's network-policy controller (platform/k8s/kube-router), buildkitd,
# buildctl and rootlesskit (platform/k8s/buildkit), Tekton's pod commands (platform/k8s/tekton), containerd,
# runc, CNI plugins, iptables, ipset, PostgreSQL and uidmap (Debian packages, unpacked, not
# installed), and the images the tests run (scripts/images). Nothing is ever pulled.
# Idempotent: a cache whose pins match is reused as it is; each finished step is kept if a later one fails.
#   scripts/node.sh          build if needed, then print the cache directory
#   scripts/node.sh --dir    print the cache directory only (no build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
k8s="$root/platform/k8s"
# shellcheck source=/dev/null
. "$k8s/versions.env"
# shellcheck source=lib/k8s-ldflags.sh
. "$root/scripts/lib/k8s-ldflags.sh"
# shellcheck source=lib/private-apt.sh
. "$root/scripts/lib/private-apt.sh"
# shellcheck source=/dev/null
. "$k8s/node.env"

pins_hash=$(cat "$k8s/versions.env" "$k8s/node.env" "$k8s"/node/go.* "$k8s"/node/pause/main.go \
  "$k8s"/coredns/go.* "$k8s"/coredns/main.go "$k8s"/kube-router/go.* "$k8s"/buildkit/go.* "$k8s"/tekton/go.* \
  "$root"/scripts/images/* | sha256sum | cut -c1-12)
cache_root="${PIPELINE_SIDECARS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pipeline-sidecars}"
out="$cache_root/node-${K8S_VERSION}-${pins_hash}"
if [ "${1:-}" = "--dir" ]; then echo "$out"; exit 0; fi
if [ -f "$out/.complete" ]; then echo "$out"; exit 0; fi

say() { printf '[node] %s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || { say "missing '$1': $2"; exit 1; }; }
need go "install Go >= 1.26"
need apt-get "this script fetches containerd, runc, CNI plugins and iptables from Debian's archive; run it on Debian or Ubuntu"
need dpkg "install dpkg (packages are unpacked with dpkg -x)"
need jq "install jq (it writes the image manifests)"
mkdir -p "$out/bin" "$out/cni/bin" "$out/sbin" "$out/tekton"
started=$(date +%s)
say "building the real-node tier into $out (first time on this machine; later runs reuse it)"
jobs=${BUILD_JOBS:-$(nproc)}
# Go builds yield to the rest of the machine: the cache is built once, tests run often.
gobuild() { nice -n "${BUILD_NICE:-10}" go build -p "$jobs" -trimpath "$@"; }
progress() { awk -v tag="$1" '{n++; if (n % 200 == 0) printf "[node]   ... %s: %d packages compiled\n", tag, n > "/dev/stderr"}'; }

# --- Debian packages: one private apt state holding sid and bookworm, exact versions, unpacked into debian/.
if [ ! -f "$out/debian/.complete" ]; then
  apt_dir="$out/apt"
  # shellcheck disable=SC2086
  private_apt_download "$apt_dir" "sid bookworm" "$apt_dir/debs" $NODE_DEBIAN_SID $NODE_DEBIAN_BOOKWORM
  rm -rf "$out/debian"; mkdir -p "$out/debian"
  for deb in "$apt_dir"/debs/*.deb; do dpkg -x "$deb" "$out/debian"; done
  touch "$out/debian/.complete"
fi
d="$out/debian"
cp "$d/usr/bin/containerd" "$d/usr/bin/containerd-shim-runc-v2" "$d/usr/bin/ctr" "$d/usr/sbin/runc" "$out/bin/"
for p in bridge host-local loopback portmap; do cp "$d/usr/lib/cni/$p" "$out/cni/bin/"; done
# iptables (legacy backend) and ipset for the node's own daemons, through wrappers that find the
# unpacked libraries and extensions and keep the xtables lock file inside the cache.
mkdir -p "$out/run"
for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  cat > "$out/sbin/$t" <<WRAP
#!/bin/sh
export LD_LIBRARY_PATH="$d/usr/lib/x86_64-linux-gnu" XTABLES_LIBDIR="$d/usr/lib/x86_64-linux-gnu/xtables"
export XTABLES_LOCKFILE="\${XTABLES_LOCKFILE:-$out/run/xtables.lock}"
exec "$d/usr/sbin/xtables-legacy-multi" $t "\$@"
WRAP
done
printf '#!/bin/sh\nexport LD_LIBRARY_PATH="%s"\nexec "%s" "$@"\n' "$d/usr/lib/x86_64-linux-gnu" "$d/usr/sbin/ipset" > "$out/sbin/ipset"
chmod 755 "$out"/sbin/*
say "debian: containerd $("$out/bin/containerd" --version | awk '{print $3}'), runc $("$out/bin/runc" --version | awk 'NR==1{print $3}'), $("$out/sbin/iptables" --version)"

# --- kubelet, kube-proxy (the control plane's flags, so its Go build cache is reused) and the pause command.
if [ ! -x "$out/bin/kubelet" ] || [ ! -x "$out/bin/kube-proxy" ]; then
  ldflags=$(k8s_ldflags "$K8S_VERSION")
  say "kubelet, kube-proxy $K8S_VERSION: go build -p $jobs (about 1 minute after the control plane's build, 5 cold)"
  (cd "$k8s/node" && gobuild -v -ldflags "$ldflags" -o "$out/bin/" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy) 2>&1 | progress kubernetes
  [ "${PIPESTATUS[0]}" -eq 0 ] || { say "go build of kubelet/kube-proxy failed"; exit 1; }
fi
if [ ! -x "$out/bin/pause" ]; then
  (cd "$k8s/node" && CGO_ENABLED=0 gobuild -ldflags "-s -w" -o "$out/bin/pause" ./pause)
fi

# --- CoreDNS: the cluster zone only (kubernetes plugin), NXDOMAIN for the rest, no forward plugin.
if [ ! -x "$out/bin/coredns" ]; then
  say "coredns $COREDNS_VERSION (kubernetes + template plugins only): go build"
  (cd "$k8s/coredns" && CGO_ENABLED=0 gobuild -v -ldflags "-s -w" -o "$out/bin/coredns" .) 2>&1 | progress coredns
  [ "${PIPESTATUS[0]}" -eq 0 ] || { say "go build of coredns failed"; exit 1; }
fi

# --- kube-router: only its network-policy controller is run (--run-firewall).
if [ ! -x "$out/bin/kube-router" ]; then
  say "kube-router $KUBE_ROUTER_VERSION: go build"
  (cd "$k8s/kube-router" && CGO_ENABLED=0 gobuild -v -ldflags "-s -w" -o "$out/bin/kube-router" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router) 2>&1 | progress kube-router
  [ "${PIPESTATUS[0]}" -eq 0 ] || { say "go build of kube-router failed"; exit 1; }
fi

# --- buildkitd, buildctl and rootlesskit for the moby/buildkit:rootless stand-in.
if [ ! -x "$out/buildkit/buildkitd" ] || [ ! -x "$out/buildkit/buildctl" ] || [ ! -x "$out/buildkit/rootlesskit" ]; then
  say "buildkit $(awk '$1=="github.com/moby/buildkit"{print $2}' "$k8s/buildkit/go.mod"), rootlesskit: go build"
  mkdir -p "$out/buildkit"
  (cd "$k8s/buildkit" && CGO_ENABLED=0 gobuild -v -ldflags "-s -w" -o "$out/buildkit/" github.com/moby/buildkit/cmd/buildkitd \
      github.com/moby/buildkit/cmd/buildctl github.com/rootless-containers/rootlesskit/v2/cmd/rootlesskit) 2>&1 | progress buildkit
  [ "${PIPESTATUS[0]}" -eq 0 ] || { say "go build of buildkit failed"; exit 1; }
fi

# --- Tekton's pod commands, static, from the Tekton module the controller is built from.
if [ ! -x "$out/tekton/entrypoint" ] || [ ! -x "$out/tekton/nop" ] || [ ! -x "$out/tekton/workingdirinit" ] || [ ! -x "$out/tekton/sidecarlogresults" ]; then
  say "tekton $TEKTON_VERSION pod commands (entrypoint, nop, workingdirinit, sidecarlogresults): go build"
  (cd "$k8s/tekton" && CGO_ENABLED=0 gobuild -v -ldflags "-s -w" -o "$out/tekton/" \
      github.com/tektoncd/pipeline/cmd/entrypoint github.com/tektoncd/pipeline/cmd/nop \
      github.com/tektoncd/pipeline/cmd/workingdirinit github.com/tektoncd/pipeline/cmd/sidecarlogresults) 2>&1 | progress tekton
  [ "${PIPESTATUS[0]}" -eq 0 ] || { say "go build of tekton's pod commands failed"; exit 1; }
fi

# --- Images.
if [ ! -f "$out/images/images.txt" ]; then
  say "images: building locally (nothing pulled)"
  "$root/scripts/images/build-images.sh" "$out"
fi

touch "$out/.complete"
say "done in $(( $(date +%s) - started )) s ($(du -sh "$out" | cut -f1) in $out)"
echo "$out"
