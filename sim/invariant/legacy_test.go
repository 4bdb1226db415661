package invariant

import (
	"strconv"

	"github.com/driftlab/driftlab/sim/history"
)

// The checker's tests are written as the reference operator's history
// reads to people: a KVCluster's spec and status, its member Pods. kv
// turns such a history into the records the truth tracker makes of it
// (sim/subject, with the reference operator's declaration: readyReplicas,
// observedGeneration, ready), so that the tests judge what a run judges.
const (
	kindClusterSpec    = "cluster-spec"    // Generation, Replicas
	kindClusterStatus  = "cluster-status"  // Ready, ObservedGeneration, Condition
	kindClusterDeleted = "cluster-deleted" //
)

// referenceSubject is what the reference operator's subject record says.
var referenceSubject = &history.SubjectInfo{Kind: "kv.driftlab.io/v1alpha1, Kind=KVCluster", Operator: "test", Properties: []history.PropertyInfo{
	{Name: "readyReplicas", Reported: "status.readyReplicas", Truth: "Ready Pods", Latency: history.LatencyIncreases, Reflect: history.ReflectAtLeast},
	{Name: "observedGeneration", Reported: "status.observedGeneration", Truth: "metadata.generation", Latency: history.LatencyOff, Reflect: history.ReflectEqual, NoStaleness: true},
	{Name: "ready", Reported: "status.conditions[type=Ready].status", Truth: "readyReplicas == spec.replicas", Latency: history.LatencyOff, Reflect: history.ReflectEqual, NoStaleness: true},
}}

type kvState struct {
	gen      int64
	replicas int32
	ready    map[string]bool
	truth    [3]string
	reported [3]string
}

func (c *kvState) readyCount() int {
	n := 0
	for _, r := range c.ready {
		if r {
			n++
		}
	}
	return n
}

func (c *kvState) truths() [3]string {
	cond := `"False"`
	if c.readyCount() == int(c.replicas) {
		cond = `"True"`
	}
	return [3]string{strconv.Itoa(c.readyCount()), strconv.FormatInt(c.gen, 10), cond}
}

// kv converts a history of cluster and Pod records (in any order: it is
// converted in time order) into subject, object, truth and reported
// records.
func kv(legacy []history.Record) []history.Record {
	legacy = Sorted(legacy)
	out := []history.Record{{Source: history.SourceHarness, Kind: history.KindSubject, Subject: referenceSubject}}
	clusters := map[string]*kvState{}
	owner := map[string]string{}
	names := [3]string{"readyReplicas", "observedGeneration", "ready"}
	changes := func(r history.Record, c *kvState, key, pod string, all bool) {
		t := c.truths()
		var props []history.Prop
		for i := range t {
			if all || t[i] != c.truth[i] {
				props = append(props, history.Prop{Name: names[i], Value: t[i]})
			}
		}
		c.truth = t
		if len(props) > 0 {
			out = append(out, history.Record{T: r.T, Source: history.SourceTruth, Kind: history.KindTruth, Object: key, Pod: pod, Props: props})
		}
	}
	for _, r := range legacy {
		if r.Source != history.SourceTruth {
			out = append(out, r)
			continue
		}
		key := r.Cluster
		switch r.Kind {
		case kindClusterSpec:
			c := clusters[key]
			fresh := c == nil
			if fresh {
				c = &kvState{ready: map[string]bool{}}
				clusters[key] = c
				out = append(out, history.Record{T: r.T, Source: history.SourceTruth, Kind: history.KindObjectCreated, Object: key})
			}
			c.gen = r.Generation
			if r.Replicas != nil {
				c.replicas = *r.Replicas
			}
			changes(r, c, key, "", fresh)
		case kindClusterStatus:
			c := clusters[key]
			if c == nil {
				continue
			}
			rep := [3]string{strconv.Itoa(int(*r.Ready)), strconv.FormatInt(r.ObservedGeneration, 10), strconv.Quote(r.Condition)}
			if r.ObservedGeneration == 0 {
				rep[1] = ""
			}
			if r.Condition == "" {
				rep[2] = ""
			}
			var props []history.Prop
			for i := range rep {
				if rep[i] != c.reported[i] {
					props = append(props, history.Prop{Name: names[i], Value: rep[i]})
				}
			}
			c.reported = rep
			if len(props) > 0 {
				out = append(out, history.Record{T: r.T, Source: history.SourceTruth, Kind: history.KindReported, Object: key, Props: props})
			}
		case kindClusterDeleted:
			delete(clusters, key)
			out = append(out, history.Record{T: r.T, Source: history.SourceTruth, Kind: history.KindObjectDeleted, Object: key})
		case history.KindPodCreated, history.KindPodReady, history.KindPodUnready, history.KindPodDeleted:
			if r.Kind == history.KindPodDeleted && key == "" {
				key = owner[r.Pod]
			}
			owner[r.Pod] = key
			c := clusters[key]
			if c == nil {
				continue
			}
			r.Object = key
			out = append(out, r)
			switch r.Kind {
			case history.KindPodCreated:
				c.ready[r.Pod] = false
			case history.KindPodReady:
				c.ready[r.Pod] = true
			case history.KindPodUnready:
				c.ready[r.Pod] = false
			case history.KindPodDeleted:
				delete(c.ready, r.Pod)
			}
			changes(r, c, key, r.Pod, false)
		}
	}
	return out
}
