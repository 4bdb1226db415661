package cli

import (
	"context"
	"fmt"
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
		cfg             watchstorm.Config
		history         int
		delay, duration time.Duration
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
	return cmd
}

func runWatchstorm(ctx context.Context, cmd *cobra.Command, cfg watchstorm.Config, history int, delay, duration time.Duration) error {
	log := cmd.ErrOrStderr()
	t0 := time.Now()
	c, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return &exitError{ExitRunFailed, fmt.Errorf("connecting to etcd %v: %w", cfg.Endpoints, err)}
	}
	defer c.Close()
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
