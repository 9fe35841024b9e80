//go:build tools

// Package tools pins Argo CD's one command binary (cmd/, which dispatches on the name it is run
// under: argocd-application-controller, argocd-repo-server, ...), so that `go build` in this module
// builds it at the version in go.mod. It is never compiled.
package tools

import (
	_ "github.com/argoproj/argo-cd/v3/cmd"
)
