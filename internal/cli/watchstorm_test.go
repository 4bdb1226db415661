package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap"

	"github.com/driftlab/driftlab/faults/watchstorm"
	"github.com/driftlab/driftlab/internal/embedetcd"
)

// startEtcd starts an embedded etcd, with a self-signed TLS listener when
// tlsDir is set, and returns its client URL and the CA file.
func startEtcd(t *testing.T, tlsDir string) (*embed.Etcd, string, string) {
	t.Helper()
	var ca string
	e, u, err := embedetcd.Start(embedetcd.Options{DataDir: t.TempDir(), Tweak: func(c *embed.Config) {
		if tlsDir == "" {
			return
		}
		info, err := transport.SelfCert(zap.NewNop(), tlsDir, []string{"127.0.0.1:0"}, 1)
		if err != nil {
			t.Error(err)
			return
		}
		ca = info.CertFile
		c.ClientTLSInfo = info
		c.ListenClientUrls[0].Scheme, c.AdvertiseClientUrls[0].Scheme = "https", "https"
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	if tlsDir != "" {
		u.Scheme = "https"
	}
	return e, u.String(), ca
}

func stormKeys(t *testing.T, e *embed.Etcd) (int64, int64) {
	t.Helper()
	c := v3client.New(e.Server)
	defer c.Close()
	resp, err := c.Get(context.Background(), watchstorm.Prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count, resp.Header.Revision
}

// TestWatchstormCommand runs `driftlab watchstorm` against an embedded
// etcd: it writes the history, churns watchers for the duration and stops
// by itself, reporting its re-watches; and it reaches an etcd that only
// speaks TLS through --cacert (as the exported Job does with a kubeadm
// etcd).
func TestWatchstormCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd; skipped with -short")
	}
	e, url, _ := startEtcd(t, "")
	t0 := time.Now()
	code, out, stderr := run("watchstorm", "--endpoints", url, "--clients", "2", "--watchers", "4",
		"--slow-consumers", "3", "--history", "300", "--delay", "200ms", "--duration", "600ms")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if el := time.Since(t0); el < 800*time.Millisecond {
		t.Errorf("returned after %s, before delay+duration (800ms)", el)
	}
	if n, _ := stormKeys(t, e); n != 300 {
		t.Errorf("%d history keys, want 300", n)
	}
	var rewatches, slow int
	if _, err := fmt.Sscanf(out, "rewatches %d  slow consumers %d", &rewatches, &slow); err != nil || rewatches < 8 || slow != 3 {
		t.Errorf("output %q: want at least 8 rewatches (2×4 watchers, 100ms each, for 600ms) and 3 slow consumers", out)
	}

	et, turl, ca := startEtcd(t, filepath.Join(t.TempDir(), "tls"))
	if code, _, stderr := run("watchstorm", "--endpoints", turl, "--clients", "1", "--watchers", "1", "--history", "100", "--duration", "300ms"); code != ExitRunFailed {
		t.Errorf("without --cacert against a TLS etcd: exit %d (%s), want %d", code, stderr, ExitRunFailed)
	}
	code, out, stderr = run("watchstorm", "--endpoints", turl, "--cacert", ca, "--clients", "1", "--watchers", "2",
		"--history", "100", "--duration", "300ms")
	if code != ExitOK || !strings.HasPrefix(out, "rewatches ") {
		t.Fatalf("with --cacert: exit %d, out %q, stderr %s", code, out, stderr)
	}
	if n, _ := stormKeys(t, et); n != 100 {
		t.Errorf("TLS: %d history keys, want 100", n)
	}

	if code, _, stderr := run("watchstorm", "--clients", "1"); code != ExitUsage || !strings.Contains(stderr, "--endpoints") {
		t.Errorf("no --endpoints: exit %d, stderr %q", code, stderr)
	}
}
