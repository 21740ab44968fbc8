// Command gatehouse is the single-sign-on server and its command-line tool.
package main

import (
	"os"

	"github.com/gatehouse-sso/gatehouse/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
