// Package bundletest replays run bundles in Go tests, so that an incident
// recorded as a bundle becomes a regression test:
//
//	func TestIncidentFrozenStatus(t *testing.T) {
//		bundletest.Replay(t, "testdata/bundles/incident-frozen-status", bundletest.Options{})
//	}
//
// Replay verifies the bundle (a modified or truncated file fails the test),
// re-runs its resolved scenario on the virtual backend and asserts that the
// replay reproduces the recorded outcome: the same result for every
// invariant. After the bug is fixed, Expect: Fixed asserts the opposite:
// the replay of the same scenario now passes every invariant.
//
// The trace hash is compared too: it must be equal when the bundle was
// recorded by the same, clean driftlab commit. A different hash from another commit is logged, not
// failed: the virtual model may change between commits, the incident must
// still show.
package bundletest
