#!/usr/bin/env bash
# Builds the operator image from the repository's Dockerfile, with no registry and no network, into
# a cache of its own keyed by everything the image is made of (the build context, the Dockerfile,
# the base images' inputs, this script). Nothing is ever pulled:
#   - the builder is Debian's dockerd (with its BuildKit) from the real-node cache (scripts/node.sh),
#     started for this build only in a network namespace of its own with nothing but loopback, and a
#     mount namespace of its own, so its mounts end with it; the build runs with --network none;
#   - the base images are local equivalents named through the Dockerfile's build args:
#       NODE_IMAGE    (node:20-slim): this machine's Node.js 20 and npm, busybox for /bin/sh, and an
#                     npm cache holding exactly package-lock.json's packages, with npm set offline,
#                     so `npm ci` in the build stage needs no registry;
#       RUNTIME_IMAGE (gcr.io/distroless/nodejs20-debian12:nonroot): /nodejs/bin/node with exactly the
#                     shared libraries it links, CA certificates, the nonroot user 65532, no shell.
# The result is a `docker save` archive that the real node imports with `ctr images import`.
#   scripts/operator-image.sh          build if needed; print "REF ARCHIVE SIZE_BYTES" (the image's unpacked size)
#   scripts/operator-image.sh --dir    print the cache directory only (no build)
#   scripts/operator-image.sh --derived CONTEXT DOCKERFILE NAME OUT
#                                      an image built FROM ours, as a platform team builds one (docs/custom-kind.md):
#                                      DOCKERFILE in CONTEXT by the same builder, with our image (built first if
#                                      needed) under its release name ghcr.io/pipeline-sidecars/operator:VERSION;
#                                      prints "REF ARCHIVE SIZE_BYTES" with REF = NAME:VERSION-<image id>, the archive
#                                      in OUT (a directory of its own; a finished one is reused as is)
# Needs root (namespaces), the real-node cache (scripts/node.sh), node and npm on PATH.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
here="$root/scripts"
node_cache=$(bash "$here/node.sh" --dir)
deb="$node_cache/debian"
node_bin=$(command -v node)
npm_dir=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)

# The build context exactly as docker sends it: every file not matched by .dockerignore.
context_files() {
  (cd "$root" && find . -type f -print | sed 's|^\./||' | sort | while read -r f; do
    case "$f" in
      .git/*|.work/*|node_modules/*|lib/*|dist/*|coverage/*|test/*|bench/*|examples/*|docs/*|scripts/*|.ci/*|*.log|*.md) ;;
      *) echo "$f" ;;
    esac
  done)
}
inputs_hash=$( {
  context_files | while read -r f; do printf '%s ' "$f"; sha256sum < "$root/$f"; done
  sha256sum < "$0"; sha256sum < "$here/images/oci-archive.sh"; sha256sum < "$here/images/rootfs-lib.sh"
  sha256sum < "$node_bin"; "$node_bin" --version; cat "$npm_dir/package.json" | sha256sum
  basename "$node_cache"
} | sha256sum | cut -c1-12)
version=$(cd "$root" && node -p 'require("./package.json").version')
cache_root="${PIPELINE_SIDECARS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pipeline-sidecars}"
out="$cache_root/operator-image-$inputs_hash"
ref="pipeline-sidecars.local/operator:$version-$inputs_hash"
if [ "${1:-}" = "--dir" ]; then echo "$out"; exit 0; fi
mode=ours
if [ "${1:-}" = "--derived" ]; then
  [ $# -eq 5 ] || { echo "usage: $0 --derived CONTEXT DOCKERFILE NAME OUT" >&2; exit 2; }
  mode=derived derived_context=$(cd "$2" && pwd) derived_dockerfile=$(readlink -f "$3") derived_name=$4 out=$5 ref=$4
  base=$(bash "$0" | tail -n 1)
  read -r base_ref base_archive _ <<< "$base"
fi
if [ -f "$out/.complete" ]; then cat "$out/image.txt"; exit 0; fi

say() { printf '[operator-image] %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { say "needs root (the builder runs in network and mount namespaces of its own)"; exit 1; }
[ -f "$node_cache/.complete" ] || { say "the real-node cache $node_cache is not built: run scripts/node.sh first (it holds dockerd and BuildKit)"; exit 1; }
"$node_bin" -e 'process.exit(process.versions.node.split(".")[0] === "20" ? 0 : 1)' \
  || { say "node on PATH is $("$node_bin" --version), not 20: the local node:20-slim and distroless nodejs20 equivalents are made from it"; exit 1; }
started=$(date +%s)
say "building $ref from the Dockerfile (nothing pulled, no network; first time for these inputs)"
mkdir -p "$out"
work=$(mktemp -d /tmp/pipeline-sidecars-image-XXXXXX)
cgroup_parent="pipeline-sidecars-image-$inputs_hash"
daemon_pid=""
maxkeys=$(cat /proc/sys/kernel/keys/root_maxkeys) maxbytes=$(cat /proc/sys/kernel/keys/root_maxbytes)
# dockerd makes /run/docker/plugins (a fixed path, on the host's /run even from its mount namespace).
run_docker_existed=$([ -e /run/docker ] && echo yes || echo no)
cleanup() {
  if [ -n "$daemon_pid" ]; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$daemon_pid" 2>/dev/null || true
  fi
  # dockerd's containers (the RUN steps) had cgroups under our parent in each hierarchy: remove them.
  for m in /sys/fs/cgroup /sys/fs/cgroup/*; do
    [ -d "$m/$cgroup_parent" ] && find "$m/$cgroup_parent" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  # dockerd raises the root key quota when it is lower than it likes; put it back.
  echo "$maxkeys" > /proc/sys/kernel/keys/root_maxkeys 2>/dev/null || true
  echo "$maxbytes" > /proc/sys/kernel/keys/root_maxbytes 2>/dev/null || true
  [ "$run_docker_existed" = yes ] || rm -rf /run/docker
  rm -rf "$work"
  # A failed build leaves no half-filled cache directory behind.
  [ -f "$out/.complete" ] || rm -rf "$out"
}
trap cleanup EXIT
export DEB_ROOT="$deb"
# shellcheck source=/dev/null
. "$here/images/rootfs-lib.sh"

# Our Dockerfile's base images; an image FROM ours needs none of them.
if [ "$mode" = ours ]; then
# --- npm cache for the lockfile: what `npm ci` in the build stage installs, fetched here (a build step may use the registry).
mkdir -p "$work/lock"
cp "$root/package.json" "$root/package-lock.json" "$work/lock/"
say "npm cache for package-lock.json"
(cd "$work/lock" && npm ci --cache "$work/npm-cache" --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
rm -rf "$work/lock"

# --- node:20-slim equivalent: node, npm, npx, a shell, the npm cache, npm offline.
r="$work/rootfs-node"; add_base "$r"; add_busybox "$r"
add_bin "$r" "$node_bin" usr/local/bin/node
mkdir -p "$r/usr/local/lib/node_modules"
cp -a "$npm_dir" "$r/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$r/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$r/usr/local/bin/npx"
mkdir -p "$r/root"; mv "$work/npm-cache" "$r/root/.npm"
"$here/images/oci-archive.sh" "$r" "$work/node.tar" pipeline-sidecars.local/node:20-slim 'cmd=["node"]' \
  'env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","NODE_VERSION='"$("$node_bin" -p process.versions.node)"'","npm_config_offline=true","npm_config_update_notifier=false"]' >&2
rm -rf "$r"

# --- gcr.io/distroless/nodejs20-debian12:nonroot equivalent: node at /nodejs/bin/node, no shell, user 65532.
r="$work/rootfs-runtime"
mkdir -p "$r/etc/ssl/certs" "$r/tmp" "$r/home/nonroot"
chmod 1777 "$r/tmp"
add_bin "$r" "$node_bin" nodejs/bin/node
cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$r/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' > "$r/etc/group"
"$here/images/oci-archive.sh" "$r" "$work/runtime.tar" pipeline-sidecars.local/distroless-nodejs20-debian12:nonroot \
  'entrypoint=["/nodejs/bin/node"]' 'user=65532' 'workdir=/home/nonroot' \
  'env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"]' >&2
rm -rf "$r"

fi

# --- the builder: dockerd (with its containerd and runc) alone in new network and mount namespaces.
mkdir -p "$work/bin" "$work/docker-config"
for b in "$deb/usr/sbin/dockerd" "$deb/usr/bin/containerd" "$deb/usr/bin/containerd-shim-runc-v2" "$deb/usr/sbin/runc" "$deb/usr/bin/docker"; do ln -s "$b" "$work/bin/"; done
mkdir -p "$work/docker-config/cli-plugins"; ln -s "$deb/usr/libexec/docker/cli-plugins/docker-buildx" "$work/docker-config/cli-plugins/"
echo '{}' > "$work/daemon.json"
sock="$work/docker.sock"
export PATH="$work/bin:$PATH" DOCKER_CONFIG="$work/docker-config" DOCKER_HOST="unix://$sock" DOCKER_BUILDKIT=1
unshare --net --mount --propagation private -- sh -c '
  ip link set lo up
  exec dockerd --config-file "$1/daemon.json" --data-root "$1/data" --exec-root "$1/exec" --pidfile "$1/dockerd.pid" \
    --host "unix://$1/docker.sock" --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --userland-proxy=false --cgroup-parent="/$2" --exec-opt native.cgroupdriver=cgroupfs --storage-driver=overlay2 \
    --log-level=warn' dockerd "$work" "$cgroup_parent" > "$work/dockerd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 300); do
  docker version >/dev/null 2>&1 && break
  kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/dockerd.log" >&2; say "dockerd exited"; exit 1; }
  sleep 0.1
done
docker version >/dev/null || { cat "$work/dockerd.log" >&2; say "dockerd did not answer"; exit 1; }
say "dockerd $(docker version --format '{{.Server.Version}}') up in a namespace of its own; loading the base images"
if [ "$mode" = derived ]; then
  docker load -i "$base_archive" >&2
  docker tag "$base_ref" "ghcr.io/pipeline-sidecars/operator:$version"
  say "docker build --network none -f $derived_dockerfile $derived_context (FROM ours as released)"
  docker build --network none --progress plain -f "$derived_dockerfile" -t "$derived_name:build" "$derived_context" > "$work/build.log" 2>&1 \
    || { tail -60 "$work/build.log" >&2; say "docker build failed"; exit 1; }
  ref="$derived_name:$version-$(docker image inspect --format '{{.Id}}' "$derived_name:build" | sed 's/^sha256://' | cut -c1-12)"
  docker tag "$derived_name:build" "$ref"
else
docker load -i "$work/node.tar" >&2
docker load -i "$work/runtime.tar" >&2
rm -f "$work/node.tar" "$work/runtime.tar"

say "docker build --network none (npm ci offline from the cache, tsc, npm prune)"
docker build --network none --progress plain \
  --build-arg NODE_IMAGE=pipeline-sidecars.local/node:20-slim \
  --build-arg RUNTIME_IMAGE=pipeline-sidecars.local/distroless-nodejs20-debian12:nonroot \
  -t "$ref" "$root" > "$work/build.log" 2>&1 || { tail -60 "$work/build.log" >&2; say "docker build failed"; exit 1; }
fi
size=$(docker image inspect --format '{{.Size}}' "$ref")
docker save -o "$out/operator.tar.tmp" "$ref"
mv "$out/operator.tar.tmp" "$out/operator.tar"
cp "$work/build.log" "$out/build.log"
echo "$ref $out/operator.tar $size" > "$out/image.txt"
touch "$out/.complete"
say "built $ref in $(( $(date +%s) - started )) s: $(( size / 1024 / 1024 )) MiB unpacked, archive $(( $(stat -c %s "$out/operator.tar") / 1024 / 1024 )) MiB"
cat "$out/image.txt"
