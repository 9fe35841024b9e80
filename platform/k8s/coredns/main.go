// Command coredns is CoreDNS with only what the real-node tier's cluster DNS needs: the `kubernetes`
// plugin answers the cluster zone from the API server, `template` answers every other name with a
// local NXDOMAIN, and there is no `forward` plugin at all, so no query can ever leave the machine.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/template"
)

// The plugin order (CoreDNS runs them in this order whatever the Corefile says).
var directives = []string{"errors", "log", "health", "ready", "kubernetes", "template"}

func init() { dnsserver.Directives = directives }

func main() { coremain.Run() }
