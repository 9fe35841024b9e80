# shellcheck shell=bash
# k8s_ldflags VERSION: the -ldflags a Kubernetes command is built with, so that `--version` reports
# the pinned release (as upstream's release builds do) and the build is reproducible (a fixed date).
# Sourced by control-plane.sh, node.sh and kubectl.sh: the same flags also let Go reuse one build
# cache across the three.
k8s_ldflags() {
  local version=$1 minor pkg flags="-s -w"
  minor=${version#v1.}; minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    flags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  printf '%s' "$flags"
}
