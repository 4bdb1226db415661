// Package sweep runs one scenario over many seeds on the virtual backend,
// on all cores, and reports the seeds whose invariants failed with the
// command that replays each one. A sweep can be split into shards (seed i
// belongs to shard i mod n) so that many machines, or the pods of a
// Kubernetes Indexed Job, share one seed space without overlap.
//
// With Options.Swarm, each seed also chooses which of the scenario's faults
// are on (Swarm: swarm testing, FoundationDB's BUGGIFY idea), from a PCG
// stream derived from the seed alone; a failure names the subset, its replay
// command carries --swarm so that `driftlab run` chooses the same subset,
// and the result says, per fault, how often runs failed with it on and off.
package sweep
