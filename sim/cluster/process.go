package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/driftlab/driftlab/scenarios"
)

// ProcessOperator runs the reference operator in its own process, as the
// local backend does: argv (default: this binary's "operator" subcommand)
// with --kubeconfig (cfg written to a file in dir), the scenario's cache
// variant, bugs and GOMAXPROCS, and --events -. Its standard output
// carries its history records, its standard error its logs. On ctx's end
// it gets SIGTERM, then SIGKILL after 15s; it never outlives this process.
func ProcessOperator(s *scenarios.Scenario, dir string, argv []string) OperatorFunc {
	return func(ctx context.Context, cfg *rest.Config, events, log io.Writer) error {
		if len(argv) == 0 {
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding driftlab's own binary to run the operator: %w", err)
			}
			argv = []string{self, "operator"}
		}
		kc := filepath.Join(dir, "operator.kubeconfig")
		if err := writeKubeconfig(cfg, kc); err != nil {
			return err
		}
		args := append(append([]string{}, argv[1:]...), "--kubeconfig", kc, "--cache", s.Operator.Cache,
			"--metrics-bind-address", "127.0.0.1:0", "--events", "-")
		for _, b := range s.Operator.Bugs {
			args = append(args, "--bug", b)
		}
		cmd := exec.Command(argv[0], args...)
		cmd.Stdout, cmd.Stderr = events, log
		cmd.Env = append(os.Environ(), "DRIFTLAB_OPERATOR_CHILD=1")
		if n := s.Operator.GOMAXPROCS; n > 0 {
			cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(n))
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting operator %q: %w", argv, err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return fmt.Errorf("operator exited: %v", err)
		case <-ctx.Done():
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			return nil
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("operator did not stop within 15s of SIGTERM; killed")
		}
	}
}

// writeKubeconfig writes cfg (host, TLS and token) as a kubeconfig, mode 0600.
func writeKubeconfig(cfg *rest.Config, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData,
		CertificateAuthority: cfg.CAFile, InsecureSkipTLSVerify: cfg.Insecure, TLSServerName: cfg.ServerName}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData,
		ClientCertificate: cfg.CertFile, ClientKey: cfg.KeyFile, Token: cfg.BearerToken, TokenFile: cfg.BearerTokenFile,
		Username: cfg.Username, Password: cfg.Password}
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "c"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return err
	}
	return os.Chmod(path, 0o600)
}
