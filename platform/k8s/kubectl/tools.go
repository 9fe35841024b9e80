//go:build tools

// Package tools pins kubectl, which the install tests (test/node/operator-install.test.ts) run as a
// user would, at the control plane's Kubernetes version and staging replaces; it is never compiled.
// A module of its own: kubectl needs modules (kustomize, ...) that the control plane's go.sum lacks,
// and adding them there would change the control plane's cache key.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kubectl"
)
