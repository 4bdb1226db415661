// Package scenarios holds driftlab's scenario format and its built-in
// scenarios.
//
// A scenario is a YAML file: a name, a seed, the backend it runs on by
// default, the reference operator's configuration, the simulated kubelet's
// Pod-ready delay distribution, a workload, faults with their schedule, and
// the invariants with their thresholds. Files are decoded strictly: an
// unknown field, a value of the wrong type or a bad value is an error that
// names the file, the line and the field path (for example
// "scenarios/baseline.yaml:14: workload.scale.every: invalid duration").
//
// The *.yaml files in this directory are embedded in the binary; Builtin
// loads them by name, Load reads any file.
package scenarios
