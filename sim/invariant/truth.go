package invariant

import (
	"fmt"
	"sort"
	"time"

	"github.com/driftlab/driftlab/sim/history"
)

// ClusterState is the truth and the reported status of one KVCluster.
type ClusterState struct {
	Generation int64
	Replicas   int32
	// ReadyPods maps member Pod keys to their readiness. Truth.Apply
	// keeps it, and the count of Ready ones with it: change it only
	// through Apply.
	ReadyPods map[string]bool
	// Reported status, from committed status writes.
	HasStatus          bool
	StatusReady        int32
	ObservedGeneration int64
	Condition          string

	ready int32 // Ready entries of ReadyPods
}

// ReadyCount is the number of member Pods that are Ready.
func (c *ClusterState) ReadyCount() int32 { return c.ready }

// setPod sets a member's readiness.
func (c *ClusterState) setPod(pod string, ready bool) {
	if was, ok := c.ReadyPods[pod]; ok && was {
		c.ready--
	}
	c.ReadyPods[pod] = ready
	if ready {
		c.ready++
	}
}

// deletePod removes a member.
func (c *ClusterState) deletePod(pod string) {
	if c.ReadyPods[pod] {
		c.ready--
	}
	delete(c.ReadyPods, pod)
}

// WantCondition is the Ready condition status the truth calls for.
func (c *ClusterState) WantCondition() string {
	if c.ReadyCount() == c.Replicas {
		return "True"
	}
	return "False"
}

// inSync is InSync without the explanation (no formatting on the replay's
// hot path).
func (c *ClusterState) inSync() bool {
	return c.HasStatus && c.StatusReady == c.ReadyCount() && c.ObservedGeneration == c.Generation && c.Condition == c.WantCondition()
}

// InSync reports whether the reported status equals the truth, and if not,
// how it differs.
func (c *ClusterState) InSync() (bool, string) {
	ready := c.ReadyCount()
	switch {
	case !c.HasStatus:
		return false, "no status written"
	case c.StatusReady != ready:
		return false, fmt.Sprintf("status.readyReplicas=%d but %d member Pods are Ready", c.StatusReady, ready)
	case c.ObservedGeneration != c.Generation:
		return false, fmt.Sprintf("status.observedGeneration=%d but generation is %d", c.ObservedGeneration, c.Generation)
	case c.Condition != c.WantCondition():
		return false, fmt.Sprintf("Ready condition is %q but want %q (%d/%d ready)", c.Condition, c.WantCondition(), ready, c.Replicas)
	}
	return true, ""
}

// Truth is the state of the world replayed from truth records.
type Truth struct {
	Clusters map[string]*ClusterState
	podOwner map[string]string // pod key -> cluster key
}

// NewTruth returns an empty world.
func NewTruth() *Truth {
	return &Truth{Clusters: map[string]*ClusterState{}, podOwner: map[string]string{}}
}

// Apply updates the world with one record; records from other sources are
// ignored.
func (t *Truth) Apply(r history.Record) { t.apply(&r) }

func (t *Truth) apply(r *history.Record) {
	if r.Source != history.SourceTruth {
		return
	}
	switch r.Kind {
	case history.KindClusterSpec:
		c := t.cluster(r.Cluster)
		c.Generation = r.Generation
		if r.Replicas != nil {
			c.Replicas = *r.Replicas
		}
	case history.KindClusterStatus:
		c := t.cluster(r.Cluster)
		c.HasStatus = true
		if r.Ready != nil {
			c.StatusReady = *r.Ready
		}
		c.ObservedGeneration = r.ObservedGeneration
		c.Condition = r.Condition
	case history.KindClusterDeleted:
		delete(t.Clusters, r.Cluster)
	case history.KindPodCreated:
		t.podOwner[r.Pod] = r.Cluster
		if c := t.Clusters[r.Cluster]; c != nil {
			c.setPod(r.Pod, false)
		}
	case history.KindPodReady, history.KindPodUnready:
		t.podOwner[r.Pod] = r.Cluster
		if c := t.Clusters[r.Cluster]; c != nil {
			c.setPod(r.Pod, r.Kind == history.KindPodReady)
		}
	case history.KindPodDeleted:
		if c := t.Clusters[t.podOwner[r.Pod]]; c != nil {
			c.deletePod(r.Pod)
		}
		delete(t.podOwner, r.Pod)
	}
}

func (t *Truth) cluster(key string) *ClusterState {
	c := t.Clusters[key]
	if c == nil {
		c = &ClusterState{ReadyPods: map[string]bool{}}
		t.Clusters[key] = c
	}
	return c
}

// Keys returns the cluster keys in order.
func (t *Truth) Keys() []string {
	keys := make([]string, 0, len(t.Clusters))
	for k := range t.Clusters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Converged reports whether every cluster's status equals the truth; when
// not, it names the first cluster that differs and how.
func (t *Truth) Converged() (bool, string) {
	for _, k := range t.Keys() {
		if ok, why := t.Clusters[k].InSync(); !ok {
			return false, k + ": " + why
		}
	}
	return true, ""
}

// Sorted returns the records ordered by T (stable), the order the checks
// replay them in.
func Sorted(recs []history.Record) []history.Record {
	out := append([]history.Record(nil), recs...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].T < out[j].T })
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
