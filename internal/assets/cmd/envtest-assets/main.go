// Command envtest-assets builds or finds the control-plane binaries and
// prints the directory that holds them all (for KUBEBUILDER_ASSETS).
// scripts/envtest-assets.sh runs it with `go run`, which compiles only the
// standard library and internal/assets; `driftlab assets` does the same.
//
//	go run ./internal/assets/cmd/envtest-assets [-version 1.37.2] [-dir DIR] [NAME...]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/driftlab/driftlab/internal/assets"
)

func main() {
	version := flag.String("version", assets.DefaultVersion, "Kubernetes version to build")
	dir := flag.String("dir", "", "directory to build into (default: the per-user cache, "+cacheDirHint()+")")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := assets.Ensure(ctx, assets.Options{Version: *version, Dir: *dir, Names: flag.Args(), Log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "envtest-assets:", err)
		os.Exit(1)
	}
	fmt.Println(res.Dir)
}

func cacheDirHint() string {
	d, err := assets.CacheDir(assets.DefaultVersion)
	if err != nil {
		return err.Error()
	}
	return d
}
