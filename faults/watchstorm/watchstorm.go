package watchstorm

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Prefix is where Preload writes its history; nothing else uses it.
const Prefix = "/driftlab/watchstorm/"

// Config configures a storm.
type Config struct {
	// Endpoints are etcd client URLs (127.0.0.1).
	Endpoints []string
	// Clients is the number of client connections that churn watchers.
	Clients int
	// Watchers is the number of watchers each client keeps re-creating.
	Watchers int
	// SlowConsumers is the number of watchers that never read.
	SlowConsumers int
	// StartRev is the revision watchers start from; it should be old, with
	// much history after it (see Preload).
	StartRev int64
	// Period is how long each watcher lives before it is re-created; the
	// churn rate is Clients*Watchers/Period. Default 100ms, etcd's sync
	// interval.
	Period time.Duration
}

// Stats counts what a storm did.
type Stats struct {
	// Rewatches is how many watchers were created and cancelled.
	Rewatches int64
	// SlowConsumers is how many never-read watchers are open.
	SlowConsumers int64
}

// Storm is a running watch storm.
type Storm struct {
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	clients   []*clientv3.Client
	conns     []*grpc.ClientConn
	rewatches atomic.Int64
	slow      atomic.Int64
}

// Preload writes n keys of valueSize bytes under Prefix (cycling over 1000
// keys) and returns the revision before the first write: watchers started
// there replay all n revisions.
func Preload(ctx context.Context, c *clientv3.Client, n, valueSize int) (int64, error) {
	resp, err := c.Get(ctx, Prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("watchstorm: reading head revision: %w", err)
	}
	start := resp.Header.Revision
	val := string(make([]byte, valueSize))
	const batch = 64 // puts per transaction
	for i := 0; i < n; i += batch {
		ops := make([]clientv3.Op, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			ops = append(ops, clientv3.OpPut(Prefix+strconv.Itoa(j%1000), val))
		}
		// A batch's keys are consecutive in a cycle of 1000, so distinct, as
		// a transaction requires.
		if _, err := c.Txn(ctx).Then(ops...).Commit(); err != nil {
			return 0, fmt.Errorf("watchstorm: preloading history: %w", err)
		}
	}
	return start, nil
}

// Start starts a storm; Stop ends it.
func Start(cfg Config) (*Storm, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("watchstorm: no etcd endpoints")
	}
	if cfg.StartRev < 1 {
		cfg.StartRev = 1
	}
	if cfg.Period <= 0 {
		cfg.Period = 100 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Storm{cancel: cancel}
	for i := 0; i < cfg.Clients; i++ {
		c, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			s.Stop()
			return nil, fmt.Errorf("watchstorm: connecting: %w", err)
		}
		s.clients = append(s.clients, c)
		for w := 0; w < cfg.Watchers; w++ {
			s.wg.Add(1)
			go s.churn(ctx, c, cfg.StartRev, cfg.Period)
		}
	}
	if cfg.SlowConsumers > 0 {
		if err := s.startSlow(ctx, cfg); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// churn re-creates one watcher from startRev every period: a fixed churn
// rate, so that etcd's cost (re-reading the history after startRev for
// every unsynced watcher) grows with the history, not with how fast etcd
// happens to answer.
func (s *Storm) churn(ctx context.Context, c *clientv3.Client, startRev int64, period time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(period)
	defer t.Stop()
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(ctx)
		wch := c.Watch(wctx, Prefix, clientv3.WithPrefix(), clientv3.WithRev(startRev))
		s.wg.Add(1)
		go func() { // read what etcd sends, as a client does, until cancelled
			defer s.wg.Done()
			for range wch {
			}
		}()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		cancel()
		s.rewatches.Add(1)
	}
}

// startSlow opens raw gRPC watch streams whose responses are never
// received: once gRPC's flow-control window is full, etcd cannot send and
// the watchers become victims.
func (s *Storm) startSlow(ctx context.Context, cfg Config) error {
	const perStream = 16
	for opened := 0; opened < cfg.SlowConsumers; {
		target := cfg.Endpoints[0]
		if u := trimScheme(target); u != "" {
			target = u
		}
		conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithInitialWindowSize(1<<16), grpc.WithInitialConnWindowSize(1<<16))
		if err != nil {
			return fmt.Errorf("watchstorm: dialing for slow consumers: %w", err)
		}
		s.conns = append(s.conns, conn)
		stream, err := pb.NewWatchClient(conn).Watch(ctx)
		if err != nil {
			return fmt.Errorf("watchstorm: opening a slow watch stream: %w", err)
		}
		for i := 0; i < perStream && opened < cfg.SlowConsumers; i++ {
			req := &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
				Key: []byte("/"), RangeEnd: []byte("0"), StartRevision: cfg.StartRev,
			}}}
			if err := stream.Send(req); err != nil {
				return fmt.Errorf("watchstorm: creating a slow watcher: %w", err)
			}
			opened++
			s.slow.Add(1)
		}
		// Never Recv: that is the point.
	}
	return nil
}

func trimScheme(u string) string {
	for _, p := range []string{"http://", "https://"} {
		if len(u) > len(p) && u[:len(p)] == p {
			return u[len(p):]
		}
	}
	return ""
}

// Stats returns the storm's counters.
func (s *Storm) Stats() Stats {
	return Stats{Rewatches: s.rewatches.Load(), SlowConsumers: s.slow.Load()}
}

// Stop ends the storm: every watcher is cancelled and every connection
// closed, so etcd's watch load returns to normal.
func (s *Storm) Stop() {
	s.cancel()
	s.wg.Wait()
	for _, c := range s.clients {
		_ = c.Close()
	}
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.clients, s.conns = nil, nil
}
