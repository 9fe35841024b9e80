//go:build tools

// Package tools pins buildkitd and buildctl (github.com/moby/buildkit) and rootlesskit, built into
// the test rig's stand-in for moby/buildkit:rootless (scripts/images/build-images.sh). A test-rig
// component, never shipped.
package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
	_ "github.com/rootless-containers/rootlesskit/v2/cmd/rootlesskit"
)
