package webapp_test

import (
	"sort"
	"testing"

	"github.com/driftlab/driftlab/lab"
	"github.com/driftlab/driftlab/sim/history"

	"example.com/webapp/controller"
)

// BenchmarkWarmSetup measures what a run costs before its workload on a
// warm plane (the CRD installed, the plane up): the run's namespace, the
// truth watch, the simulated kubelet, the operator started and ready (its
// caches synced: a first reconcile possible). Reported as the median of
// the runs (setup-ms), from each run's own record of when its workload
// started plus its namespace and CRD step.
func BenchmarkWarmSetup(b *testing.B) {
	s := lab.Parse(b, `
name: warm-setup
subject:
  apiVersion: webapp.example.com/v1
  kind: WebApp
  crds: [../config/crd]
  pods: {owned: true}
  properties:
    - {name: availableReplicas, reported: status.availableReplicas, default: "0", truth: {readyPods: true}}
workload: {duration: 0s, objects: 0}
`)
	s.File = "scenarios/warm-setup.yaml" // CRD paths relative to scenarios/
	sys, err := lab.FromScenario(s, "webapp", lab.Manager(controller.Setup, controller.Scheme()))
	if err != nil {
		b.Fatal(err)
	}
	plane := lab.Shared(b)
	plane.Run(b, s, sys) // installs the CRD: the plane is warm from here
	var ms []float64
	b.ResetTimer()
	for range b.N {
		out := plane.Run(b, s, sys, lab.Keep())
		if out.Summary == nil {
			b.Fatal(out.Explain())
		}
		ms = append(ms, out.Summary.Startup.CRDsMs+workloadStartMs(b, out))
	}
	b.StopTimer()
	sort.Float64s(ms)
	b.ReportMetric(ms[len(ms)/2], "setup-ms")
	b.ReportMetric(ms[len(ms)-1], "max-setup-ms")
}

// workloadStartMs is when the run's workload started, from its history
// (the first record is the recorder's start, after the plane step).
func workloadStartMs(b *testing.B, out *lab.Outcome) float64 {
	recs, err := out.Records()
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range recs {
		if r.Kind == history.KindWorkloadStart {
			return float64(r.T.Microseconds()) / 1000
		}
	}
	b.Fatal("no workload-start record")
	return 0
}
