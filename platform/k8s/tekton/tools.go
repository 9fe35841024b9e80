//go:build tools

// Package tools pins the Tekton Pipelines commands the test platform runs (controller, webhook and
// resolvers) and those behind Tekton's pod images (entrypoint, nop, sidecarlogresults,
// workingdirinit), so that `go build` in this module builds them at the version in go.mod.
package tools

import (
	_ "github.com/tektoncd/pipeline/cmd/controller"
	_ "github.com/tektoncd/pipeline/cmd/entrypoint"
	_ "github.com/tektoncd/pipeline/cmd/nop"
	_ "github.com/tektoncd/pipeline/cmd/resolvers"
	_ "github.com/tektoncd/pipeline/cmd/sidecarlogresults"
	_ "github.com/tektoncd/pipeline/cmd/webhook"
	_ "github.com/tektoncd/pipeline/cmd/workingdirinit"
)
