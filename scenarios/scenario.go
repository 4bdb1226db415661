package scenarios

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/driftlab/driftlab/operator/bugs"
	"github.com/driftlab/driftlab/operator/statecache"
)

// Scenario is one scenario file, decoded, with every default filled in.
type Scenario struct {
	// Name identifies the scenario in summaries and run directories.
	Name string `yaml:"name" json:"name"`
	// Description says in a sentence what the scenario shows.
	Description string `yaml:"description" json:"description,omitempty"`
	// Seed drives every random choice (workload, kubelet delays). Default 1.
	Seed uint64 `yaml:"seed" json:"seed"`
	// Backend is the backend used when the command line names none: "local"
	// (default) or "virtual".
	Backend string `yaml:"backend" json:"backend"`
	// Operator configures the reference operator.
	Operator Operator `yaml:"operator" json:"operator"`
	// Kubelet configures the simulated kubelet.
	Kubelet Kubelet `yaml:"kubelet" json:"kubelet"`
	// Workload is what the harness does to the cluster.
	Workload Workload `yaml:"workload" json:"workload"`
	// Faults are the injected faults and their schedule.
	Faults []Fault `yaml:"faults" json:"faults"`
	// Invariants are the checks and their thresholds.
	Invariants Invariants `yaml:"invariants" json:"invariants"`

	// File is where the scenario was read from ("builtin:baseline" for
	// embedded ones). Not part of the file format.
	File string `yaml:"-" json:"file,omitempty"`
}

// Operator configures the reference operator.
type Operator struct {
	// Cache is the member state cache variant. Default "map".
	Cache string `yaml:"cache" json:"cache"`
	// Bugs switches on seeded bugs by name (off by default).
	Bugs []string `yaml:"bugs" json:"bugs,omitempty"`
	// GOMAXPROCS limits the operator process's Go runtime to this many
	// threads running Go code, as a CPU limit of that many cores does in a
	// cluster; 0 keeps Go's default.
	GOMAXPROCS int `yaml:"gomaxprocs" json:"gomaxprocs,omitempty"`
}

// Kubelet configures the simulated kubelet.
type Kubelet struct {
	// ReadyDelay is the time from a Pod's creation until the simulated
	// kubelet reports it Running and Ready.
	ReadyDelay Distribution `yaml:"readyDelay" json:"readyDelay"`
}

// Distribution is a seeded distribution of durations.
type Distribution struct {
	// Distribution is "uniform" (between Min and Max, default), "constant"
	// (always Min) or "exponential" (Min plus an exponential tail with mean
	// Mean, capped at Max).
	Distribution string   `yaml:"distribution" json:"distribution"`
	Min          Duration `yaml:"min" json:"min"`
	Max          Duration `yaml:"max" json:"max"`
	Mean         Duration `yaml:"mean" json:"mean,omitempty"`
}

// Workload is what the harness does to the cluster, generated from the seed.
type Workload struct {
	// Duration is how long operations are applied. Default 20s.
	Duration Duration `yaml:"duration" json:"duration"`
	// Clusters is how many KVClusters are created at the start. Default 3.
	Clusters int `yaml:"clusters" json:"clusters"`
	// Namespace holds the KVClusters. Default "default".
	Namespace string `yaml:"namespace" json:"namespace"`
	// InitialReplicas is the range of spec.replicas at creation. Default 1–3.
	InitialReplicas IntRange `yaml:"initialReplicas" json:"initialReplicas"`
	// Scale changes one cluster's spec.replicas at a fixed interval.
	Scale Scale `yaml:"scale" json:"scale"`
	// Annotate patches an annotation on the clusters at a fixed rate, like the
	// write-up's 5-patches-a-second loop.
	Annotate Annotate `yaml:"annotate" json:"annotate"`
	// DeleteClusters is how many clusters are deleted at the end of the
	// workload. Default 0.
	DeleteClusters int `yaml:"deleteClusters" json:"deleteClusters"`
	// Operations, when set, is the workload as an explicit, timed list of
	// operations (for example imported from an audit log); the generated
	// parts above (clusters, scale, annotate, deleteClusters) are then not
	// used. See operations.go.
	Operations []Operation `yaml:"operations" json:"operations,omitempty"`
}

// IntRange is an inclusive range of integers.
type IntRange struct {
	Min int `yaml:"min" json:"min"`
	Max int `yaml:"max" json:"max"`
}

// Scale changes the replicas of one randomly chosen cluster every Every.
type Scale struct {
	// Every is the interval between scale operations; 0 means no scaling.
	Every Duration `yaml:"every" json:"every"`
	// Replicas is the range the new spec.replicas is drawn from. Default 0–5.
	Replicas IntRange `yaml:"replicas" json:"replicas"`
}

// Annotate patches metadata.annotations of a random cluster at Rate per second.
type Annotate struct {
	// Rate is patches per second over all clusters; 0 means none.
	Rate float64 `yaml:"rate" json:"rate"`
}

// Invariants are the checks of a run.
type Invariants struct {
	Drift   Drift   `yaml:"drift" json:"drift"`
	Latency Latency `yaml:"latency" json:"latency"`
}

// Drift configures the state-drift invariant.
type Drift struct {
	// ConvergeWithin is how long after the workload stops every KVCluster's
	// status must equal the truth. Default 15s.
	ConvergeWithin Duration `yaml:"convergeWithin" json:"convergeWithin"`
	// Staleness is how old the truth a status write claims may be: every
	// written readyReplicas must have been the real count at some moment
	// within this bound before the write. Default 5s.
	Staleness Duration `yaml:"staleness" json:"staleness"`
}

// Latency configures the latency invariant: the time from a Pod becoming
// Ready until a status write reflects it. A zero threshold is not checked.
type Latency struct {
	P50 Duration `yaml:"p50" json:"p50"`
	P90 Duration `yaml:"p90" json:"p90"`
	P99 Duration `yaml:"p99" json:"p99"`
	Max Duration `yaml:"max" json:"max"`
}

// Known values, for validation and error messages.
var (
	Backends      = []string{"local", "virtual", "cluster"}
	CacheVariants = statecache.Variants()
	Distributions = []string{"uniform", "constant", "exponential"}
)

//go:embed *.yaml
var builtin embed.FS

// BuiltinNames lists the embedded scenarios.
func BuiltinNames() []string {
	names, _ := fs.Glob(builtin, "*.yaml")
	for i, n := range names {
		names[i] = strings.TrimSuffix(n, ".yaml")
	}
	sort.Strings(names)
	return names
}

// Builtin loads an embedded scenario by name ("baseline").
func Builtin(name string) (*Scenario, error) {
	b, err := builtin.ReadFile(name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no built-in scenario %q (have: %s)", name, strings.Join(BuiltinNames(), ", "))
	}
	return Parse("builtin:"+name, b)
}

// Load reads a scenario file. A path that does not exist but names a
// built-in scenario ("baseline") loads the built-in one.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !strings.ContainsAny(path, "/.") {
			return Builtin(path)
		}
		return nil, fmt.Errorf("reading scenario: %w", err)
	}
	return Parse(filepath.Clean(path), b)
}

// Parse decodes and validates a scenario; file names the source in errors.
func Parse(file string, data []byte) (*Scenario, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		return nil, &FieldError{File: file, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	s := &Scenario{}
	d := &decoder{file: file}
	if err := d.decode(&root, "", reflectValue(s)); err != nil {
		return nil, err
	}
	s.File = file
	s.setDefaults()
	if err := s.validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fe.File = file
			fe.Line = lineOf(&root, fe.Field)
		}
		return nil, err
	}
	return s, nil
}

func (s *Scenario) setDefaults() {
	if s.Seed == 0 {
		s.Seed = 1
	}
	if s.Backend == "" {
		s.Backend = "local"
	}
	if s.Operator.Cache == "" {
		s.Operator.Cache = "map"
	}
	rd := &s.Kubelet.ReadyDelay
	if rd.Distribution == "" {
		rd.Distribution = "uniform"
	}
	if rd.Min.Duration == 0 && rd.Max.Duration == 0 {
		rd.Min.Duration, rd.Max.Duration = 100*time.Millisecond, 500*time.Millisecond
	}
	if rd.Max.Duration == 0 {
		rd.Max = rd.Min
	}
	w := &s.Workload
	if w.Duration.Duration == 0 {
		w.Duration.Duration = 20 * time.Second
	}
	if w.Clusters == 0 {
		w.Clusters = 3
	}
	if w.Namespace == "" {
		w.Namespace = "default"
	}
	if w.InitialReplicas == (IntRange{}) {
		w.InitialReplicas = IntRange{Min: 1, Max: 3}
	}
	if w.Scale.Replicas == (IntRange{}) {
		w.Scale.Replicas = IntRange{Min: 0, Max: 5}
	}
	for i := range s.Faults {
		s.Faults[i].setDefaults()
	}
	inv := &s.Invariants
	if inv.Drift.ConvergeWithin.Duration == 0 {
		inv.Drift.ConvergeWithin.Duration = 15 * time.Second
	}
	if inv.Drift.Staleness.Duration == 0 {
		inv.Drift.Staleness.Duration = 5 * time.Second
	}
}

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

func oneOf(field, v string, allowed []string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fieldErr(field, "unknown value %q (want one of: %s)", v, strings.Join(allowed, ", "))
}

func (s *Scenario) validate() error {
	if s.Name == "" {
		return fieldErr("name", "required")
	}
	for _, r := range s.Name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return fieldErr("name", "%q: use lower-case letters, digits and '-'", s.Name)
		}
	}
	if err := oneOf("backend", s.Backend, Backends); err != nil {
		return err
	}
	if err := oneOf("operator.cache", s.Operator.Cache, CacheVariants); err != nil {
		return err
	}
	for i, b := range s.Operator.Bugs {
		if err := oneOf(fmt.Sprintf("operator.bugs[%d]", i), b, bugs.Names()); err != nil {
			return err
		}
	}
	if s.Operator.GOMAXPROCS < 0 || s.Operator.GOMAXPROCS > 256 {
		return fieldErr("operator.gomaxprocs", "must be within 0..256, got %d", s.Operator.GOMAXPROCS)
	}
	rd := s.Kubelet.ReadyDelay
	if err := oneOf("kubelet.readyDelay.distribution", rd.Distribution, Distributions); err != nil {
		return err
	}
	if rd.Min.Duration < 0 {
		return fieldErr("kubelet.readyDelay.min", "must not be negative, got %s", rd.Min)
	}
	if rd.Max.Duration < rd.Min.Duration {
		return fieldErr("kubelet.readyDelay.max", "must be at least min (%s), got %s", rd.Min, rd.Max)
	}
	if rd.Distribution == "exponential" && rd.Mean.Duration <= 0 {
		return fieldErr("kubelet.readyDelay.mean", "exponential needs a positive mean")
	}
	w := s.Workload
	if w.Duration.Duration < 0 {
		return fieldErr("workload.duration", "must not be negative, got %s", w.Duration)
	}
	if w.Clusters < 0 || w.Clusters > 100 {
		return fieldErr("workload.clusters", "must be between 0 and 100, got %d", w.Clusters)
	}
	if err := checkRange("workload.initialReplicas", w.InitialReplicas); err != nil {
		return err
	}
	if w.Scale.Every.Duration < 0 {
		return fieldErr("workload.scale.every", "must not be negative, got %s", w.Scale.Every)
	}
	if err := checkRange("workload.scale.replicas", w.Scale.Replicas); err != nil {
		return err
	}
	if w.Annotate.Rate < 0 || w.Annotate.Rate > 1000 {
		return fieldErr("workload.annotate.rate", "must be between 0 and 1000 per second, got %g", w.Annotate.Rate)
	}
	if w.DeleteClusters < 0 || w.DeleteClusters > w.Clusters {
		return fieldErr("workload.deleteClusters", "must be between 0 and clusters (%d), got %d", w.Clusters, w.DeleteClusters)
	}
	if err := validateOperations(w); err != nil {
		return err
	}
	if err := validateFaults(s.Faults, s.Workload.Duration.Duration); err != nil {
		return err
	}
	inv := s.Invariants
	for _, d := range []struct {
		field string
		v     Duration
	}{
		{"invariants.drift.convergeWithin", inv.Drift.ConvergeWithin},
		{"invariants.drift.staleness", inv.Drift.Staleness},
		{"invariants.latency.p50", inv.Latency.P50},
		{"invariants.latency.p90", inv.Latency.P90},
		{"invariants.latency.p99", inv.Latency.P99},
		{"invariants.latency.max", inv.Latency.Max},
	} {
		if d.v.Duration < 0 {
			return fieldErr(d.field, "must not be negative, got %s", d.v)
		}
	}
	return nil
}

func checkRange(field string, r IntRange) error {
	if r.Min < 0 || r.Max > 1000 {
		return fieldErr(field, "must lie within 0..1000, got %d..%d", r.Min, r.Max)
	}
	if r.Max < r.Min {
		return fieldErr(field+".max", "must be at least min (%d), got %d", r.Min, r.Max)
	}
	return nil
}

func reflectValue(s *Scenario) reflect.Value { return reflect.ValueOf(s).Elem() }
