//go:build tools

// Package tools pins kube-router, of which the real-node tier runs only the network-policy controller
// (--run-firewall, no router, no service proxy) so that NetworkPolicies are enforced on the test node.
// A test-rig component, never shipped. Its vulnerable dependencies are raised in go.mod, as k3s does.
package tools

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
