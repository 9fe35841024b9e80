//go:build tools

// Package tools pins kwok, which fakes a kubelet for the test cluster; it is never compiled.
// It lives in its own module so its k8s.io/* versions do not fight the control plane's.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
