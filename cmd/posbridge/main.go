// Command posbridge exchanges batch files between an order management
// system and the point-of-sale, warehouse and online-store systems around it.
package main

import (
	"os"

	"github.com/posbridge/posbridge/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
