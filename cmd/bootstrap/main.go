//go:build unix

// Command bootstrap is the first command on a fresh checkout. It builds the
// slipway command, saying every 20 seconds how many of its packages are
// compiled and how long is left (go run says nothing while it compiles, ten
// minutes on a fresh machine), then runs it with bootstrap's arguments:
//
//	go run ./cmd/bootstrap demo
//
// is `go run ./cmd/slipway demo` with progress. Run it from the module's
// root. It needs only the standard library and package toolchain, so it
// compiles in seconds; the slipway binary is kept in the toolchain's cache
// (toolchain.DefaultCacheDir) and rebuilt only when its sources change.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/slipwayhq/slipway/automation/toolchain"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	bin, err := toolchain.New().Command(ctx, ".", "./cmd/slipway")
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bootstrap:", err)
		os.Exit(1)
	}
	// The slipway command takes this process over: same PID, terminal and
	// signals, and its exit code is the one the caller sees.
	err = syscall.Exec(bin, append([]string{bin}, os.Args[1:]...), os.Environ())
	fmt.Fprintln(os.Stderr, "bootstrap: running", bin+":", err)
	os.Exit(1)
}
