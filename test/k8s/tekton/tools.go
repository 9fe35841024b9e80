//go:build tools

// Package tools pins Tekton Pipelines' controller and webhook (and the commands behind Tekton's
// pod images) so that one `go build` in this module builds them at the version in go.mod.
package tools

import (
	_ "github.com/tektoncd/pipeline/cmd/controller"
	_ "github.com/tektoncd/pipeline/cmd/webhook"
)
