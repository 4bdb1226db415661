package etcdtest

import (
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/driftlab/driftlab/internal/embedetcd"
	"github.com/driftlab/driftlab/internal/promread"
)

// Start starts etcd with its data in t.TempDir(); tweak may change the
// config first. etcd is closed when the test ends.
func Start(t testing.TB, tweak func(*embed.Config)) (*embed.Etcd, *clientv3.Client) {
	t.Helper()
	dir := t.TempDir()
	e, curl, err := embedetcd.Start(embedetcd.Options{Name: "etcdtest", DataDir: filepath.Join(dir, "data"),
		LogFile: filepath.Join(dir, "etcd.log"), LogLevel: "error", Tweak: tweak})
	if err != nil {
		t.Fatalf("starting etcd: %v", err)
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{curl.String()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		e.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Close()
		e.Close()
	})
	return e, c
}

// Metric reads one of etcd's in-process metrics; see promread.Metric.
func Metric(name string) (value float64, count uint64, ok bool) { return promread.Metric(name) }
