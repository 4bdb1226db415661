package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/driftlab/driftlab/deploy"
)

func main() {
	image := flag.String("image", deploy.DefaultImage, "operator image")
	ns := flag.String("namespace", deploy.DefaultNamespace, "namespace of the operator")
	dir := flag.String("dir", "deploy/config", "directory to write operator.yaml into")
	stdout := flag.Bool("stdout", false, "print instead of writing")
	flag.Parse()
	b, err := deploy.YAML(deploy.OperatorHeader, deploy.Operator(*image, *ns))
	if err == nil {
		if *stdout {
			_, err = os.Stdout.Write(b)
		} else if err = os.MkdirAll(*dir, 0o755); err == nil {
			err = os.WriteFile(filepath.Join(*dir, "operator.yaml"), b, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploy/gen:", err)
		os.Exit(1)
	}
}
