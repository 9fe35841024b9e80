//go:build tools

// Package tools pins the node commands the real-node tier builds (kubelet, kube-proxy) at the same
// Kubernetes version and staging replaces as the control plane; it is never compiled. A module of
// its own keeps the control plane's cache key unchanged when the node's pins move.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
