package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/driftlab/driftlab/internal/assets"
)

func init() { commands = append(commands, newAssetsCmd) }

func newAssetsCmd() *cobra.Command {
	var version, dir string
	cmd := &cobra.Command{
		Use:   "assets [NAME...]",
		Short: "Build or find the control-plane binaries and print the directory holding them",
		Long: `Builds kube-apiserver, kube-controller-manager and kube-scheduler (or the NAMEs
given) from the Go module proxy, once, and prints the directory that holds them
all, for KUBEBUILDER_ASSETS. Binaries in $KUBEBUILDER_ASSETS or at
$TEST_ASSET_<NAME> are used instead of built. The default directory is the
per-user cache, where driftlab looks for them, so that an operator in another
module needs only:

  go run github.com/driftlab/driftlab/cmd/driftlab assets

The first build takes several minutes on 2 cores; progress goes to standard error.`,
		RunE: func(cmd *cobra.Command, names []string) error {
			res, err := assets.Ensure(cmd.Context(), assets.Options{
				Version: version, Dir: dir, Names: names, Log: cmd.ErrOrStderr(),
			})
			if err != nil {
				return &exitError{code: ExitRunFailed, err: err}
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Dir)
			return nil
		},
	}
	def, err := assets.CacheDir(assets.DefaultVersion)
	if err != nil {
		def = err.Error()
	}
	cmd.Flags().StringVar(&version, "version", assets.DefaultVersion, "Kubernetes version to build")
	cmd.Flags().StringVar(&dir, "dir", "", "directory to build into (default "+def+", the per-user cache)")
	return cmd
}
