#!/usr/bin/env bash
# Builds every image the real-node tier needs, locally: nothing is pulled and no registry is used.
# Each image is one layer from a directory (static Go binaries, busybox-static, Debian binaries with
# their shared libraries), written by oci-archive.sh. Called by scripts/node.sh with the cache dir.
#   build-images.sh CACHE_DIR       writes CACHE_DIR/images/*.tar and CACHE_DIR/images/images.txt
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1
export DEB_ROOT="$out/debian"
# shellcheck source=/dev/null
. "$here/rootfs-lib.sh"
# shellcheck source=/dev/null
. "$here/../../test/k8s/node.env"
say() { printf '[node] images: %s\n' "$*" >&2; }
work="$out/images/rootfs"
rm -rf "$work"; mkdir -p "$work" "$out/images"
list="$out/images/images.txt.tmp"; : > "$list"
image() { # image NAME ROOTFS [oci-archive keys...]
  local ref=$1 rootfs=$2 file; shift 2
  file="$out/images/$(echo "$ref" | tr '/:' '__').tar"
  "$here/oci-archive.sh" "$rootfs" "$file" "$ref" "$@" >> "$list"
  say "$(tail -1 "$list")"
}

# pause: a static Go program (test/k8s/node/pause), the sandbox image containerd is pinned to.
r="$work/pause"; mkdir -p "$r"; cp "$out/bin/pause" "$r/pause"
image "$PAUSE_IMAGE" "$r" 'entrypoint=["/pause"]'

# shell: busybox-static, Tekton's shell image (place-scripts) and the plain test pods' image.
r="$work/busybox"; add_base "$r"; add_busybox "$r"
image "$BUSYBOX_IMAGE" "$r" 'cmd=["sh"]'

# docker:27 as the steps use it: a shell plus the docker CLI.
r="$work/docker-cli"; add_base "$r"; add_busybox "$r"
add_bin "$r" "$DEB_ROOT/usr/bin/docker" usr/local/bin/docker
# buildx, as docker:27 ships it: `docker build` uses BuildKit and refuses to run without it.
add_bin "$r" "$DEB_ROOT/usr/libexec/docker/cli-plugins/docker-buildx" usr/local/libexec/docker/cli-plugins/docker-buildx
image "$DOCKER_CLI_IMAGE" "$r" 'cmd=["sh"]'

# docker:27-dind, equivalent for our purposes: dockerd, containerd, runc, iptables, docker-init, the CLI.
r="$work/dind"; add_base "$r"; add_busybox "$r"
for b in dockerd docker-proxy; do add_bin "$r" "$DEB_ROOT/usr/sbin/$b" "usr/local/bin/$b"; done
for b in docker containerd containerd-shim-runc-v2 ctr; do add_bin "$r" "$DEB_ROOT/usr/bin/$b" "usr/local/bin/$b"; done
add_bin "$r" "$DEB_ROOT/usr/libexec/docker/cli-plugins/docker-buildx" usr/local/libexec/docker/cli-plugins/docker-buildx
add_bin "$r" "$DEB_ROOT/usr/sbin/runc" usr/local/bin/runc
add_bin "$r" "$DEB_ROOT/usr/bin/tini-static" usr/local/bin/docker-init
add_bin "$r" "$DEB_ROOT/usr/sbin/xtables-legacy-multi" usr/sbin/xtables-legacy-multi
for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  ln -sf xtables-legacy-multi "$r/usr/sbin/$t"
done
mkdir -p "$r/usr/lib/x86_64-linux-gnu"; cp -a "$DEB_ROOT/usr/lib/x86_64-linux-gnu/xtables" "$r/usr/lib/x86_64-linux-gnu/"
mkdir -p "$r/var/lib/docker" "$r/etc/docker"
cp "$here/dockerd-entrypoint.sh" "$r/usr/local/bin/dockerd-entrypoint.sh"; chmod 755 "$r/usr/local/bin/dockerd-entrypoint.sh"
image "$DIND_IMAGE" "$r" 'entrypoint=["dockerd-entrypoint.sh"]' 'cmd=[]'

# registry:2, equivalent for our purposes: Debian's distribution registry with docker-library's config
# (filesystem storage in /var/lib/registry, port 5000), run as `registry serve CONFIG`.
r="$work/registry"; add_base "$r"; add_busybox "$r"
add_bin "$r" "$DEB_ROOT/usr/bin/docker-registry" bin/registry
mkdir -p "$r/etc/docker/registry" "$r/var/lib/registry"
cp "$here/registry-config.yml" "$r/etc/docker/registry/config.yml"
image "$REGISTRY_IMAGE" "$r" 'entrypoint=["/bin/registry"]' 'cmd=["serve","/etc/docker/registry/config.yml"]'

# Tekton's pod images, each binary at /ko-app/NAME as Tekton's release images (ko) place them.
for b in entrypoint nop workingdirinit sidecarlogresults; do
  r="$work/tekton-$b"; mkdir -p "$r/ko-app" "$r/tmp"; chmod 1777 "$r/tmp"; cp "$out/tekton/$b" "$r/ko-app/$b"
  # nop must have its entrypoint set: Tekton runs it with arguments only (affinity assistant).
  image "$TEKTON_IMAGE_PREFIX/$b:$TEKTON_VERSION" "$r" "entrypoint=[\"/ko-app/$b\"]"
done

rm -rf "$work"
mv "$list" "$out/images/images.txt"
