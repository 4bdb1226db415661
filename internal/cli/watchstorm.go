package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/driftlab/driftlab/faults/watchstorm"
)

func init() { commands = append(commands, newWatchstormCmd) }

func newWatchstormCmd() *cobra.Command {
	var (
		cfg               watchstorm.Config
		history           int
		delay, duration   time.Duration
		cacert, cert, key string
	)
	cmd := &cobra.Command{
		Use:   "watchstorm --endpoints URL [flags]",
		Short: "Load an etcd with watcher churn and slow consumers (the watcher-exhaustion fault)",
		Long: `Write --history revisions of 1 KiB under /driftlab/watchstorm/; then, --delay
after the command started, for --duration (0: until SIGTERM) keep --clients connections re-creating
--watchers watchers each from the revision before that history, plus
--slow-consumers watchers that never read: etcd's sync loop replays the history
for every unsynced watcher while holding its store lock, so writes and other
watches wait. Prints the counts when it stops. The Job that "driftlab chaos
export" writes for a watcher-exhaustion fault runs this.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(cfg.Endpoints) == 0 {
				return &exitError{ExitUsage, fmt.Errorf("--endpoints is required")}
			}
			if cfg.Clients < 1 || cfg.Watchers < 1 || cfg.SlowConsumers < 0 || history < 0 || delay < 0 || duration < 0 {
				return &exitError{ExitUsage, fmt.Errorf("--clients and --watchers must be positive; --slow-consumers, --history, --delay and --duration must not be negative")}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if cacert != "" || cert != "" || key != "" {
				// faults/watchstorm speaks plain gRPC; a loopback bridge
				// adds TLS (etcd's own certificates on a kubeadm node).
				tc, err := etcdTLS(cacert, cert, key)
				if err != nil {
					return &exitError{ExitUsage, err}
				}
				b, err := startTLSBridge(cfg.Endpoints[0], tc)
				if err != nil {
					return &exitError{ExitRunFailed, err}
				}
				defer b.Close()
				cfg.Endpoints = []string{"http://" + b.Addr().String()}
			}
			return runWatchstorm(ctx, cmd, cfg, history, delay, duration)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&cfg.Endpoints, "endpoints", nil, "etcd client URLs (plain HTTP)")
	f.IntVar(&cfg.Clients, "clients", 8, "client connections churning watchers")
	f.IntVar(&cfg.Watchers, "watchers", 64, "watchers each client keeps re-creating")
	f.IntVar(&cfg.SlowConsumers, "slow-consumers", 0, "watchers that never read their stream")
	f.IntVar(&history, "history", 20000, "revisions of history to write first (0: start from the current revision)")
	f.DurationVar(&cfg.Period, "period", 100*time.Millisecond, "life of one watcher before it is re-created")
	f.DurationVar(&delay, "delay", 0, "start the storm this long after the command started (the history is written first)")
	f.DurationVar(&duration, "duration", 0, "storm for this long (0: until SIGTERM)")
	f.StringVar(&cacert, "cacert", "", "CA of etcd's server certificate: connect with TLS (through a loopback bridge)")
	f.StringVar(&cert, "cert", "", "client certificate for etcd (with --key)")
	f.StringVar(&key, "key", "", "client key for etcd")
	return cmd
}

// etcdTLS is the client TLS configuration of an etcd with its own CA.
func etcdTLS(cacert, cert, key string) (*tls.Config, error) {
	tc := &tls.Config{NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12}
	if cacert != "" {
		pem, err := os.ReadFile(cacert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %s: no PEM certificate in it", cacert)
		}
	}
	if (cert == "") != (key == "") {
		return nil, fmt.Errorf("--cert and --key go together")
	}
	if cert != "" {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	return tc, nil
}

// startTLSBridge listens on 127.0.0.1 and forwards every connection to
// endpoint over TLS, offering HTTP/2 by ALPN: gRPC's cleartext HTTP/2 then
// reaches etcd's TLS listener unchanged.
func startTLSBridge(endpoint string, tc *tls.Config) (net.Listener, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("--endpoints %q: want https://host:port", endpoint)
	}
	tc = tc.Clone()
	if tc.ServerName == "" {
		tc.ServerName = u.Hostname()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer down.Close()
				up, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", u.Host, tc)
				if err != nil {
					return
				}
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(up, down); done <- struct{}{} }()
				go func() { _, _ = io.Copy(down, up); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	return l, nil
}

func runWatchstorm(ctx context.Context, cmd *cobra.Command, cfg watchstorm.Config, history int, delay, duration time.Duration) error {
	log := cmd.ErrOrStderr()
	t0 := time.Now()
	c, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return &exitError{ExitRunFailed, fmt.Errorf("connecting to etcd %v: %w", cfg.Endpoints, err)}
	}
	defer c.Close()
	// Fail fast on an unreachable etcd (clientv3 would retry for ever).
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = c.Status(sctx, cfg.Endpoints[0])
	scancel()
	if err != nil {
		return &exitError{ExitRunFailed, fmt.Errorf("etcd %s does not answer: %w", cfg.Endpoints[0], err)}
	}
	if history > 0 {
		if cfg.StartRev, err = watchstorm.Preload(ctx, c, history, 1024); err != nil {
			return &exitError{ExitRunFailed, err}
		}
	} else {
		resp, err := c.Get(ctx, watchstorm.Prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return &exitError{ExitRunFailed, fmt.Errorf("reading etcd's revision: %w", err)}
		}
		cfg.StartRev = resp.Header.Revision
	}
	fmt.Fprintf(log, "driftlab watchstorm: %d revisions of history written in %s; watchers start at revision %d\n",
		history, time.Since(t0).Round(time.Millisecond), cfg.StartRev)
	if wait := delay - time.Since(t0); wait > 0 {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	storm, err := watchstorm.Start(cfg)
	if err != nil {
		return &exitError{ExitRunFailed, err}
	}
	fmt.Fprintf(log, "driftlab watchstorm: %d clients × %d watchers churning every %s, %d slow consumers\n",
		cfg.Clients, cfg.Watchers, cfg.Period, cfg.SlowConsumers)
	var end <-chan time.Time
	if duration > 0 {
		end = time.After(duration)
	}
	select {
	case <-ctx.Done():
	case <-end:
	}
	storm.Stop()
	st := storm.Stats()
	fmt.Fprintf(cmd.OutOrStdout(), "rewatches %d  slow consumers %d\n", st.Rewatches, st.SlowConsumers)
	return nil
}
