package webapp_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/driftlab/driftlab/lab"

	"example.com/webapp/controller"
)

// One control plane for all the tests of this package, with a world
// (kube-controller-manager, kube-scheduler, three simulated Nodes) and the
// WebApp CRD installed.
func TestMain(m *testing.M) {
	lab.Main(m, lab.Options{World: &lab.World{Nodes: 3}, CRDPaths: []string{"config/crd"}})
}

// webapp is the operator under test: the subject (kind, CRDs, properties)
// from the scenario file, the controller run in this process.
func webapp(t *testing.T, s *lab.Scenario, setup func(ctrl.Manager) error) *lab.System {
	sys, err := lab.FromScenario(s, "webapp", lab.Manager(setup, controller.Scheme()))
	require.NoError(t, err)
	return sys
}

func TestBaseline(t *testing.T) {
	s := lab.Load(t, "scenarios/baseline.yaml")
	out := lab.Shared(t).Run(t, s, webapp(t, s, controller.Setup))
	require.True(t, out.Passed(), out.Explain())
}

// With Deployments, in the world: availableReplicas must follow the Ready
// Pods through the Deployment and its ReplicaSets, and the Deployment's
// own status.
func TestDeployments(t *testing.T) {
	s := lab.Load(t, "scenarios/deployments.yaml")
	out := lab.Shared(t).Run(t, s, webapp(t, s, controller.SetupDeployments))
	require.True(t, out.Passed(), out.Explain())
}

// Under a lossy link the statuses lag inside the fault's window and all
// catch up after it.
func TestLossyNetwork(t *testing.T) {
	s := lab.Load(t, "scenarios/lossy-network.yaml")
	out := lab.Shared(t).Run(t, s, webapp(t, s, controller.Setup))
	require.True(t, out.Passed(), out.Explain())
	f := out.Summary.Faults[0]
	require.NotNil(t, f.Window, out.Explain())
	require.Greater(t, f.Effect["retransmits"], 0.0, "the fault retransmitted nothing:\n"+out.Explain())
}

// The seeded bug (the controller does not watch its Pods) leaves
// statuses behind their Pods: the baseline's drift-convergence fails (a
// status never catches up), and under the fault the latency SLO does.
func TestBrokenOperatorIsCaught(t *testing.T) {
	s := lab.Load(t, "scenarios/baseline.yaml")
	out := lab.Shared(t).Run(t, s, webapp(t, s, controller.SetupBroken))
	require.True(t, out.Failed("drift-convergence"), "the bug was not caught:\n"+out.Explain())

	s = lab.Load(t, "scenarios/lossy-network.yaml")
	out = lab.Shared(t).Run(t, s, webapp(t, s, controller.SetupBroken))
	require.NoError(t, out.Err)
	require.False(t, out.Passed(), "the bug was not caught under the fault:\n"+out.Explain())
}
