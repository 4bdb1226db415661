// Package failpoint is driftlab's catalogue of failpoints and the switch
// that turns them on and off at run time.
//
// Two failpoint systems are in play:
//
//   - etcd's own gofail failpoints (`// gofail: var walBeforeSync struct{}` in
//     go.etcd.io/etcd/server/v3). They exist only in a build that uses the
//     gofail-enabled copy of etcd's server module prepared by
//     `make etcd-failpoints` (a go.work replaces the module). The embedded
//     etcd runs in the harness process, so the harness switches them with
//     go.etcd.io/gofail/runtime directly.
//   - driftlab's own pingcap/failpoint markers in the reference operator
//     (package operator/failpoints). They exist only after failpoint-ctl has
//     rewritten that package (`make failpoints-enable`, or the snapshot that
//     `make test-failpoints` rewrites). The operator runs in its own process,
//     so the harness switches them through the operator's command pipe.
//
// The catalogue (Catalogue, Lookup) is known in every build, so a scenario
// naming an unknown failpoint or giving a bad term fails on load. Whether
// the running binary really has the failpoints is found out at run time
// (EtcdAvailable, OperatorAvailable); when it does not, a failpoint fault is
// reported as skipped with the reason, never as passed.
//
// Terms follow the grammar shared by gofail and pingcap/failpoint, restricted
// to what replays and keeps the harness alive: `[N*]action[(arg)]`, chained
// with `->`, where action is sleep (milliseconds or a quoted Go duration),
// off or return. Probability modifiers (`50%`) draw from the process-global
// math/rand and would not replay from the run's seed; panic and break would
// kill or stop the harness (etcd runs in it); print writes to the harness's
// output. They are rejected on load.
package failpoint
