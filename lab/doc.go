// Package lab is driftlab's Go API for `go test`: test your own operator —
// its CRDs, its controller — against a real control plane, with faults,
// and get a drift and latency verdict.
//
//	func TestMain(m *testing.M) { lab.Main(m, lab.Options{}) }
//
//	func TestWebApp(t *testing.T) {
//		out := lab.Shared(t).Run(t, lab.Load(t, "testdata/baseline.yaml"), system)
//		require.True(t, out.Passed(), out.Explain())
//	}
//
// A Plane is an embedded etcd and a kube-apiserver on 127.0.0.1, started
// once per test binary (Main) and shared by its runs: each run gets a
// namespace of its own, each CRD is installed once, the operator is
// started for the run and stopped after it. A run whose faults must exist
// before the control plane does (a WAL fsync delay, a proxy between
// kube-apiserver and etcd) gets a plane of its own. A System says what is
// tested: its Subject (the kind, and properties: what the operator
// reports and what is true), its CRDs, and its operator — Manager (a
// controller-runtime setup function, in the test's process), Child (the
// same in a child process of the test binary), or Command (any binary).
// An Outcome says whether every invariant passed and explains why not;
// the run's bundle and report.html are kept when it fails.
//
// The control-plane binaries come from `go run
// github.com/driftlab/driftlab/cmd/driftlab assets`, which builds them
// into a per-user cache directory where Start finds them.
package lab
