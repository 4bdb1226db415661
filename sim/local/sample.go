package local

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/driftlab/driftlab/internal/promread"
)

// planeSampler reads the control plane's metrics for one plane-sample
// record: the embedded etcd's in process, kube-apiserver's from its
// /metrics with the admin credentials. Keys (see report.PlaneStats for
// what the summary makes of them):
//
//	etcd_slow_watchers, etcd_pending_events, etcd_watchers,
//	etcd_current_revision          etcd's mvcc gauges
//	wal_fsync_count, wal_fsync_sum, wal_fsync_le:<bound>
//	                               etcd_disk_wal_fsync_duration_seconds
//	apiserver_terminated_watchers  apiserver_terminated_watchers_total, all resources
//	apiserver_watches              apiserver_longrunning_requests{verb="WATCH"}
//	watch_cache_rv                 apiserver_watch_cache_resource_version of the subject's resource
//	watch_cache_lag                etcd_current_revision - watch_cache_rv
//	apiserver_scrape_ms            how long /metrics took (it slows with the apiserver)
//	apiserver_scrape_failed        1 when it failed
type planeSampler struct {
	hc  *http.Client
	url string
	gr  schema.GroupResource
}

func newPlaneSampler(admin *rest.Config, gr schema.GroupResource) (*planeSampler, error) {
	tlsCfg, err := rest.TLSConfigFor(admin)
	if err != nil {
		return nil, err
	}
	// A transport of its own, whose idle connection closes soon after the
	// run's last sample: no connection outlives the run for long.
	base := &http.Transport{TLSClientConfig: tlsCfg, IdleConnTimeout: 3 * time.Second, MaxIdleConnsPerHost: 1}
	rt, err := rest.HTTPWrappersForConfig(admin, base)
	if err != nil {
		return nil, err
	}
	// A sample a second: a stuck scrape must not pile up.
	hc := &http.Client{Transport: rt, Timeout: 2 * time.Second}
	return &planeSampler{hc: hc, url: strings.TrimSuffix(admin.Host, "/") + "/metrics", gr: gr}, nil
}

// sample reads one sample.
func (p *planeSampler) sample(ctx context.Context) map[string]float64 {
	out := map[string]float64{}
	if bs, ok := promread.Buckets(walFsyncMetric); ok {
		for _, b := range bs {
			out["wal_fsync_le:"+strconv.FormatFloat(b.UpperBound, 'g', -1, 64)] = float64(b.Count)
		}
		v, _, _ := promread.Metric(walFsyncMetric)
		out["wal_fsync_sum"] = v
		out["wal_fsync_count"] = float64(bs[len(bs)-1].Count)
	}
	t0 := time.Now()
	if err := p.scrape(ctx, out); err != nil {
		out["apiserver_scrape_failed"] = 1
	}
	out["apiserver_scrape_ms"] = float64(time.Since(t0).Microseconds()) / 1000
	// etcd's revision is read after the watch cache's: the lag may then
	// count a write made during the scrape, but is never negative.
	snap := promread.Snapshot("etcd_debugging_mvcc_slow_watcher_total", "etcd_debugging_mvcc_pending_events_total",
		"etcd_debugging_mvcc_watcher_total", "etcd_debugging_mvcc_current_revision")
	for from, to := range map[string]string{
		"etcd_debugging_mvcc_slow_watcher_total":   "etcd_slow_watchers",
		"etcd_debugging_mvcc_pending_events_total": "etcd_pending_events",
		"etcd_debugging_mvcc_watcher_total":        "etcd_watchers",
		"etcd_debugging_mvcc_current_revision":     "etcd_current_revision",
	} {
		if v, ok := snap[from]; ok {
			out[to] = v
		}
	}
	if rv, ok := out["watch_cache_rv"]; ok {
		if rev, ok := out["etcd_current_revision"]; ok {
			out["watch_cache_lag"] = rev - rv
		}
	}
	return out
}

const walFsyncMetric = "etcd_disk_wal_fsync_duration_seconds"

func (p *planeSampler) scrape(ctx context.Context, out map[string]float64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("kube-apiserver /metrics: %s", resp.Status)
	}
	samples, err := promread.ParseText(resp.Body, func(n string) bool {
		return n == "apiserver_terminated_watchers_total" || n == "apiserver_longrunning_requests" || n == "apiserver_watch_cache_resource_version"
	})
	if err != nil {
		return err
	}
	out["apiserver_terminated_watchers"] = 0
	out["apiserver_watches"] = 0
	for _, s := range samples {
		switch s.Name {
		case "apiserver_terminated_watchers_total":
			out["apiserver_terminated_watchers"] += s.Value
		case "apiserver_longrunning_requests":
			if s.Labels["verb"] == "WATCH" {
				out["apiserver_watches"] += s.Value
			}
		case "apiserver_watch_cache_resource_version":
			if s.Labels["group"] == p.gr.Group && s.Labels["resource"] == p.gr.Resource {
				out["watch_cache_rv"] = s.Value
			}
		}
	}
	return nil
}
