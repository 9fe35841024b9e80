#!/bin/sh
# The entrypoint of the locally built docker:27-dind, doing what docker-library's
# 27/dind/dockerd-entrypoint.sh does when its first argument is `dockerd` (the DockerDaemon
# construct's case): no certificate generation, no extra listener; mount securityfs and a tmpfs
# on /tmp, make / shared for nested mounts, then run the command under docker-init.
set -e
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- dockerd --host=unix:///var/run/docker.sock "$@"
fi
if [ -d /sys/kernel/security ] && ! mountpoint -q /sys/kernel/security; then
  mount -t securityfs none /sys/kernel/security || echo >&2 'could not mount /sys/kernel/security'
fi
mountpoint -q /tmp || mount -t tmpfs none /tmp
mount --make-rshared / 2>/dev/null || true
exec docker-init -- "$@"
