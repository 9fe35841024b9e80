#!/usr/bin/env bash
# Writes a single-layer image from a root file system directory as a tar archive that is both an OCI
# image layout (index.json, for `ctr images import`) and a docker archive (manifest.json, for
# `docker load`), with no registry and no daemon. Reproducible: sorted entries, mtime 0, owner root.
#   oci-archive.sh ROOTFS OUT.tar NAME:TAG [key=value ...]
# keys: entrypoint=JSON-array, cmd=JSON-array, env=JSON-array, workdir=PATH, user=UID
set -euo pipefail
rootfs=$1 out=$2 ref=$3; shift 3
entrypoint=null cmd=null workdir="" user=""
env='["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]'
for kv in "$@"; do
  case "$kv" in
    entrypoint=*) entrypoint=${kv#entrypoint=} ;;
    cmd=*) cmd=${kv#cmd=} ;;
    env=*) env=${kv#env=} ;;
    workdir=*) workdir=${kv#workdir=} ;;
    user=*) user=${kv#user=} ;;
    *) echo "oci-archive.sh: unknown key '$kv' (use entrypoint=, cmd=, env=, workdir=, user=)" >&2; exit 2 ;;
  esac
done
# docker.io/library/ names the image as containerd's CRI normalises a short name like docker:27-dind.
case "$ref" in
  */*/*|*.*/*) full=$ref ;;
  */*) full="docker.io/$ref" ;;
  *) full="docker.io/library/$ref" ;;
esac
tag=${ref##*:}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/blobs/sha256"
# File capabilities (security.capability) go into the layer: the buildkit image's newuidmap needs them.
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --hard-dereference \
  --xattrs --xattrs-include=security.capability -C "$rootfs" -cf "$work/layer.tar" .
layer_digest=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
layer_size=$(stat -c %s "$work/layer.tar")
mv "$work/layer.tar" "$work/blobs/sha256/$layer_digest"
jq -cn --argjson ep "$entrypoint" --argjson cmd "$cmd" --argjson env "$env" --arg wd "$workdir" --arg user "$user" \
  --arg diff "sha256:$layer_digest" '{
    architecture: "amd64", os: "linux", created: "1970-01-01T00:00:00Z",
    config: ({Env: $env, Entrypoint: $ep, Cmd: $cmd} + (if $wd == "" then {} else {WorkingDir: $wd} end)
             + (if $user == "" then {} else {User: $user} end)),
    rootfs: {type: "layers", diff_ids: [$diff]},
    history: [{created: "1970-01-01T00:00:00Z", created_by: "pipeline-sidecars scripts/images"}]
  }' > "$work/config.json"
config_digest=$(sha256sum "$work/config.json" | cut -d' ' -f1)
config_size=$(stat -c %s "$work/config.json")
mv "$work/config.json" "$work/blobs/sha256/$config_digest"
jq -cn --arg cd "sha256:$config_digest" --argjson cs "$config_size" --arg ld "sha256:$layer_digest" --argjson ls "$layer_size" '{
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
    layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $ld, size: $ls}]
  }' > "$work/manifest.oci.json"
manifest_digest=$(sha256sum "$work/manifest.oci.json" | cut -d' ' -f1)
manifest_size=$(stat -c %s "$work/manifest.oci.json")
mv "$work/manifest.oci.json" "$work/blobs/sha256/$manifest_digest"
jq -cn --arg md "sha256:$manifest_digest" --argjson ms "$manifest_size" --arg full "$full" --arg tag "$tag" '{
    schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $md, size: $ms,
      annotations: {"io.containerd.image.name": $full, "org.opencontainers.image.ref.name": $tag}}]
  }' > "$work/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' > "$work/oci-layout"
jq -cn --arg c "blobs/sha256/$config_digest" --arg l "blobs/sha256/$layer_digest" --arg ref "$ref" \
  '[{Config: $c, RepoTags: [$ref], Layers: [$l]}]' > "$work/manifest.json"
mkdir -p "$(dirname "$out")"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work" -cf "$out.tmp" oci-layout index.json manifest.json blobs
mv "$out.tmp" "$out"
echo "$full $out $(( layer_size / 1024 )) KiB"
