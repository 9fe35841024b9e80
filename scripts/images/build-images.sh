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
. "$here/../../platform/k8s/node.env"
say() { printf '[node] images: %s\n' "$*" >&2; }
command -v setcap >/dev/null || { say "missing 'setcap': apt-get install libcap2-bin (the buildkit image's newuidmap needs file capabilities)"; exit 1; }
work="$out/images/rootfs"
rm -rf "$work"; mkdir -p "$work" "$out/images"
list="$out/images/images.txt.tmp"; : > "$list"
image() { # image NAME ROOTFS [oci-archive keys...]
  local ref=$1 rootfs=$2 file; shift 2
  file="$out/images/$(echo "$ref" | tr '/:' '__').tar"
  "$here/oci-archive.sh" "$rootfs" "$file" "$ref" "$@" >> "$list"
  say "$(tail -1 "$list")"
}

# pause: a static Go program (platform/k8s/node/pause), the sandbox image containerd is pinned to.
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

# postgres, equivalent for our purposes: Debian's PostgreSQL server and client binaries at Debian's
# paths (their compiled-in share and lib dirs), the zoneinfo Debian builds against, a postgres user
# (uid 999 as in docker-library's image) and an entrypoint doing docker-library's init
# (postgres-entrypoint.sh). Tagged with its real major version: the Postgres kind's default follows
# what we can build and test (no Debian release runnable here ships 16).
pg=usr/lib/postgresql/$POSTGRES_MAJOR
r="$work/postgres"; add_base "$r"; add_busybox "$r"; mkdir -p "$r/usr/local/bin" "$r/$pg/lib" "$r/usr/share/postgresql"
printf 'postgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh\n' >> "$r/etc/passwd"
printf 'postgres:x:999:\n' >> "$r/etc/group"
for b in postgres initdb pg_ctl psql pg_isready; do
  add_bin "$r" "$DEB_ROOT/$pg/bin/$b" "$pg/bin/$b"; ln -sf "/$pg/bin/$b" "$r/usr/local/bin/$b"
done
# The server's loadable modules (plpgsql, snowball, ...) but not the LLVM JIT, which is optional.
find "$DEB_ROOT/$pg/lib" -maxdepth 1 -name '*.so' ! -name 'llvmjit*' -exec cp {} "$r/$pg/lib/" \;
cp -a "$DEB_ROOT/usr/share/postgresql/$POSTGRES_MAJOR" "$r/usr/share/postgresql/"
rm -rf "$r/usr/share/postgresql/$POSTGRES_MAJOR/man"
mkdir -p "$r/usr/share"; cp -a "$DEB_ROOT/usr/share/zoneinfo" "$r/usr/share/"
mkdir -p "$r/var/lib/postgresql/data" "$r/var/run/postgresql"
cp "$here/postgres-entrypoint.sh" "$r/usr/local/bin/docker-entrypoint.sh"; chmod 755 "$r/usr/local/bin/docker-entrypoint.sh"
image "$POSTGRES_IMAGE" "$r" 'entrypoint=["docker-entrypoint.sh"]' 'cmd=["postgres"]' \
  "env=[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/$pg/bin\",\"PGDATA=/var/lib/postgresql/data\"]"

# moby/buildkit:rootless, equivalent for our purposes: buildkitd, buildctl and rootlesskit built from
# their Go modules (platform/k8s/buildkit), runc (also as buildkit-runc), setuid newuidmap/newgidmap,
# user 1000 with subordinate ids, run as `rootlesskit buildkitd` by uid 1000 with upstream's
# environment. The directories upstream chowns to the user are world-writable and sticky here instead
# (every layer entry is owned by root; see oci-archive.sh).
r="$work/buildkit"; add_base "$r"; add_busybox "$r"
for b in buildkitd buildctl rootlesskit; do cp "$out/buildkit/$b" "$r/usr/bin/$b"; done
add_bin "$r" "$DEB_ROOT/usr/sbin/runc" usr/bin/runc; ln -sf runc "$r/usr/bin/buildkit-runc"
# newuidmap/newgidmap get file capabilities, not setuid root: bookworm's (shadow 4.13, built without
# libcap) keeps euid 0 when setuid, and then the kernel wants CAP_SYS_ADMIN over the new user namespace,
# which a container without privileges lacks ("newuidmap: write to uid_map failed: Operation not
# permitted"); with file capabilities it runs as uid 1000, the namespace's owner.
for b in newuidmap newgidmap; do add_bin "$r" "$DEB_ROOT/usr/bin/$b" "usr/bin/$b"; done
setcap cap_setuid,cap_setfcap+ep "$r/usr/bin/newuidmap"; setcap cap_setgid,cap_setfcap+ep "$r/usr/bin/newgidmap"
printf 'user:x:1000:1000:user:/home/user:/bin/sh\n' >> "$r/etc/passwd"
printf 'user:x:1000:\n' >> "$r/etc/group"
echo user:100000:65536 > "$r/etc/subuid"; echo user:100000:65536 > "$r/etc/subgid"
mkdir -p "$r/run/user/1000" "$r/home/user/.local/tmp" "$r/home/user/.local/share/buildkit"
chmod 1777 "$r/run/user" "$r/run/user/1000" "$r/home/user" "$r/home/user/.local" "$r/home/user/.local/tmp" "$r/home/user/.local/share" "$r/home/user/.local/share/buildkit"
image "$BUILDKIT_IMAGE" "$r" 'entrypoint=["rootlesskit","buildkitd"]' 'cmd=[]' 'user=1000:1000' \
  'env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","HOME=/home/user","USER=user","XDG_RUNTIME_DIR=/run/user/1000","TMPDIR=/home/user/.local/tmp","BUILDKIT_HOST=unix:///run/user/1000/buildkit/buildkitd.sock"]'

# Tekton's pod images, each binary at /ko-app/NAME as Tekton's release images (ko) place them.
for b in entrypoint nop workingdirinit sidecarlogresults; do
  r="$work/tekton-$b"; mkdir -p "$r/ko-app" "$r/tmp"; chmod 1777 "$r/tmp"; cp "$out/tekton/$b" "$r/ko-app/$b"
  # nop must have its entrypoint set: Tekton runs it with arguments only (affinity assistant).
  image "$TEKTON_IMAGE_PREFIX/$b:$TEKTON_VERSION" "$r" "entrypoint=[\"/ko-app/$b\"]"
done

rm -rf "$work"
mv "$list" "$out/images/images.txt"
