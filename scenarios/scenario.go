package scenarios

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/driftlab/driftlab/operator/bugs"
	"github.com/driftlab/driftlab/operator/statecache"
	"github.com/driftlab/driftlab/sim/subject"
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
	// Subject declares the custom resource under test and what its
	// operator reports; nil tests the reference operator's KVCluster.
	Subject *subject.Spec `yaml:"subject" json:"subject,omitempty"`
	// Operator says which operator runs and how: yours (command,
	// external), or the reference operator's options.
	Operator Operator `yaml:"operator" json:"operator"`
	// Kubelet configures the simulated kubelet.
	Kubelet Kubelet `yaml:"kubelet" json:"kubelet"`
	// World, when set, runs what envtest does not (local backend):
	// kube-controller-manager, kube-scheduler and simulated Nodes, so that
	// Deployments get ReplicaSets and Pods, owned objects are garbage
	// collected and namespaces finish deleting.
	World *World `yaml:"world" json:"world,omitempty"`
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

// Dir is the directory relative paths in the scenario (CRDs, the
// operator's working directory) are relative to: the scenario file's, or
// the working directory for a built-in one.
func (s *Scenario) Dir() string {
	if s.File == "" || strings.HasPrefix(s.File, "builtin:") {
		return "."
	}
	return filepath.Dir(s.File)
}

// Operator says which operator the run tests. Without a subject it is the
// reference operator, configured by Cache, Bugs and GOMAXPROCS. With one,
// it is yours: a Command the harness starts, an operator already running
// (External, cluster backend), or one a Go test supplies (package lab).
type Operator struct {
	// Cache is the reference operator's member state cache variant.
	// Default "map".
	Cache string `yaml:"cache" json:"cache,omitempty"`
	// Bugs switches on the reference operator's seeded bugs by name (off
	// by default).
	Bugs []string `yaml:"bugs" json:"bugs,omitempty"`
	// GOMAXPROCS limits the operator process's Go runtime to this many
	// threads running Go code, as a CPU limit of that many cores does in a
	// cluster; 0 keeps Go's default.
	GOMAXPROCS int `yaml:"gomaxprocs" json:"gomaxprocs,omitempty"`

	// Name names your operator in results; default the command's base name.
	Name string `yaml:"name" json:"name,omitempty"`
	// Command starts your operator: argv, each element a template that may
	// use {{.Kubeconfig}}, {{.MetricsAddr}}, {{.ProbeAddr}} (free
	// 127.0.0.1 addresses) and {{.Namespace}}. KUBECONFIG is always set
	// in its environment; nothing else is added to its arguments.
	Command []string `yaml:"command" json:"command,omitempty"`
	// Env adds variables to its environment (values are templates). It
	// works for the reference operator too (its own process on the local
	// backend), for client-go's and Go's environment knobs such as
	// HTTP2_READ_IDLE_TIMEOUT_SECONDS or GODEBUG.
	Env map[string]string `yaml:"env" json:"env,omitempty"`
	// Dir is its working directory, relative to the scenario file.
	Dir string `yaml:"dir" json:"dir,omitempty"`
	// Ready says when it is ready; default: /readyz on {{.ProbeAddr}}
	// when the command uses it, else at once.
	Ready Ready `yaml:"ready" json:"ready"`
	// External means the operator already runs against the cluster (the
	// cluster backend): the harness starts nothing.
	External bool `yaml:"external" json:"external,omitempty"`
}

// Ready says when an operator the harness started is ready for the
// workload. At most one of HTTP and Log is set; After waits on top.
type Ready struct {
	// HTTP is a URL template that answers 200 once the operator is ready
	// ("http://{{.ProbeAddr}}/readyz").
	HTTP string `yaml:"http" json:"http,omitempty"`
	// Log is a regular expression matched against the operator's output
	// ("Starting workers").
	Log string `yaml:"log" json:"log,omitempty"`
	// After waits this long after starting (or after HTTP or Log).
	After Duration `yaml:"after" json:"after,omitempty"`
	// Timeout bounds the wait (a `go run` compiles first). Default 2m.
	Timeout Duration `yaml:"timeout" json:"timeout,omitempty"`
}

// Reference reports whether the scenario tests the reference operator
// (it declares no subject).
func (s *Scenario) Reference() bool { return s.Subject == nil }

// ReferenceNamePrefix names the reference operator's KVClusters: kv-0,
// kv-1, ...
const ReferenceNamePrefix = "kv-"

// NamePrefix is what the workload's objects are named with: the subject's
// prefix, or the reference operator's.
func (s *Scenario) NamePrefix() string {
	if s.Subject != nil {
		return s.Subject.NamePrefix
	}
	return ReferenceNamePrefix
}

// Kubelet configures the simulated kubelet.
type Kubelet struct {
	// ReadyDelay is the time from a Pod's creation until the simulated
	// kubelet reports it Running and Ready.
	ReadyDelay Distribution `yaml:"readyDelay" json:"readyDelay"`
}

// World is the rest of a control plane around the apiserver.
type World struct {
	// Controllers are kube-controller-manager's controllers, as its
	// --controllers flag names them; default the usual set (deployment,
	// replicaset, statefulset, job, daemonset, garbagecollector,
	// namespace, serviceaccount-token, endpointslice, ...); [none] starts
	// no controller-manager.
	Controllers []string `yaml:"controllers" json:"controllers,omitempty"`
	// Nodes is how many simulated Nodes there are, kept Ready by
	// heartbeats; the scheduler binds Pods to them and the simulated
	// kubelet runs what is bound. Default 3.
	Nodes int `yaml:"nodes" json:"nodes"`
	// NoScheduler starts no kube-scheduler (Pods then stay unbound and
	// the kubelet serves none).
	NoScheduler bool `yaml:"noScheduler" json:"noScheduler,omitempty"`
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

// Workload is what the harness does to the cluster, generated from the
// seed, on objects of the subject kind (KVClusters without a subject).
type Workload struct {
	// Duration is how long the workload lasts: operations are applied
	// within it, and it ends at Duration even when the last one comes
	// earlier. Default 20s.
	Duration Duration `yaml:"duration" json:"duration"`
	// Objects is how many objects are created at the start. Default 3;
	// 0 creates none.
	Objects int `yaml:"objects" json:"objects"`
	// Namespace holds the objects. Default "default".
	Namespace string `yaml:"namespace" json:"namespace"`
	// InitialReplicas is the range of the replica count at creation (at
	// subject.replicas). Default 1–3.
	InitialReplicas IntRange `yaml:"initialReplicas" json:"initialReplicas"`
	// Scale changes one object's replica count at a fixed interval.
	Scale Scale `yaml:"scale" json:"scale"`
	// Annotate patches an annotation on the objects at a fixed rate, like
	// the write-up's 5-patches-a-second loop.
	Annotate Annotate `yaml:"annotate" json:"annotate"`
	// DeleteObjects is how many objects are deleted at the end of the
	// workload. Default 0.
	DeleteObjects int `yaml:"deleteObjects" json:"deleteObjects"`
	// Operations, when set, is the workload as an explicit, timed list of
	// operations (for example imported from an audit log); the generated
	// parts above (objects, scale, annotate, deleteObjects) are then not
	// used. See operations.go.
	Operations []Operation `yaml:"operations" json:"operations,omitempty"`
}

// IntRange is an inclusive range of integers.
type IntRange struct {
	Min int `yaml:"min" json:"min"`
	Max int `yaml:"max" json:"max"`
}

// Scale changes the replicas of one randomly chosen object every Every.
type Scale struct {
	// Every is the interval between scale operations; 0 means no scaling.
	Every Duration `yaml:"every" json:"every"`
	// Replicas is the range the new spec.replicas is drawn from. Default 0–5.
	Replicas IntRange `yaml:"replicas" json:"replicas"`
}

// Annotate patches metadata.annotations of a random object at Rate per second.
type Annotate struct {
	// Rate is patches per second over all objects; 0 means none.
	Rate float64 `yaml:"rate" json:"rate"`
}

// Invariants are the checks of a run.
type Invariants struct {
	Drift   Drift   `yaml:"drift" json:"drift"`
	Latency Latency `yaml:"latency" json:"latency"`
}

// Drift configures the state-drift invariant.
type Drift struct {
	// ConvergeWithin is how long after the workload stops every object's
	// reported values must equal the truth. Default 15s.
	ConvergeWithin Duration `yaml:"convergeWithin" json:"convergeWithin"`
	// Staleness is how old the truth a reported value may be: every
	// reported value must have been the truth at some moment within this
	// bound before it was reported. Default 5s.
	Staleness Duration `yaml:"staleness" json:"staleness"`
}

// Latency configures the latency invariant: the time from the commit that
// changed a truth to the commit whose reported value reflects it (for the
// reference operator: a Pod becoming Ready until the status counts it). A
// zero threshold is not checked.
type Latency struct {
	// Mean bounds the mean latency: the write-up states its incident as a
	// mean ("8–12 seconds on average"), which a percentile does not pin.
	Mean Duration `yaml:"mean" json:"mean,omitempty"`
	P50  Duration `yaml:"p50" json:"p50"`
	P90  Duration `yaml:"p90" json:"p90"`
	P99  Duration `yaml:"p99" json:"p99"`
	Max  Duration `yaml:"max" json:"max"`
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
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !strings.ContainsAny(path, "/.") {
			return Builtin(path)
		}
		return nil, fmt.Errorf("reading scenario: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > MaxFileSize {
		return nil, tooLarge(path, fmt.Sprintf("%d bytes", st.Size()))
	}
	// Read at most one byte past the limit: a FIFO or a device such as
	// /dev/zero has no size to check first.
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading scenario: %w", err)
	}
	if len(b) > MaxFileSize {
		return nil, tooLarge(path, "")
	}
	return Parse(filepath.Clean(path), b)
}

func tooLarge(file, size string) error {
	if size != "" {
		size += ": "
	}
	return &FieldError{File: file, Msg: fmt.Sprintf("%smore than the limit of %d MiB for a scenario file", size, MaxFileSize>>20)}
}

// Limits on what a scenario may ask for, so that no file can take the
// machine down: each is reported with the field that exceeds it.
const (
	// MaxFileSize is the largest scenario file read: about 80,000
	// explicit operations, which take about 2 s and 300 MB to load and
	// check, and a run of them about 1 GB (the YAML trees of the file and
	// of the bundle's scenario.yaml). At 16 MiB loading alone took 10 s
	// and 930 MB, a run 5.2 GB.
	MaxFileSize = 4 << 20
	// MaxOperations is the most operations one run may make.
	MaxOperations = 1_000_000
	// MaxDuration bounds the workload's duration and every other
	// duration of a scenario (a simulated month for virtual soaks).
	MaxDuration = 30 * 24 * time.Hour
	// MaxNameLength bounds the scenario's name: it names run directories.
	MaxNameLength = 63
)

// Parse decodes and validates a scenario; file names the source in errors.
func Parse(file string, data []byte) (*Scenario, error) {
	if len(data) > MaxFileSize {
		return nil, tooLarge(file, fmt.Sprintf("%d bytes", len(data)))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &FieldError{File: file, Msg: "the file is empty: a scenario needs at least a name"}
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); errors.Is(err, io.EOF) {
		// yaml.v3 reads a file of comments (or of "---") as no document.
		return nil, &FieldError{File: file, Msg: "the file is empty (only comments): a scenario needs at least a name"}
	} else if err != nil {
		return nil, yamlError(file, "", err)
	}
	var second yaml.Node
	if err := dec.Decode(&second); err == nil {
		return nil, &FieldError{File: file, Line: second.Line, Msg: "a second YAML document (after ---): a scenario file holds one"}
	} else if !errors.Is(err, io.EOF) {
		return nil, yamlError(file, " (in a second document, after ---: a scenario file holds one)", err)
	}
	if root.Kind == yaml.DocumentNode && (len(root.Content) == 0 || root.Content[0].Kind == yaml.ScalarNode && root.Content[0].Tag == "!!null") {
		return nil, &FieldError{File: file, Msg: "the file is empty (only comments or ---): a scenario needs at least a name"}
	}
	s := &Scenario{}
	d := &decoder{file: file, present: map[string]bool{}}
	if err := d.decode(&root, "", reflectValue(s)); err != nil {
		return nil, err
	}
	s.File = file
	if err := s.setDefaults(d.present); err != nil {
		return nil, withLine(err, file, &root)
	}
	if err := s.validate(); err != nil {
		return nil, withLine(err, file, &root)
	}
	return s, nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError is a syntax error of the YAML parser as a FieldError, with the
// line it names moved to the front (file:line: not valid YAML: ...).
func yamlError(file, where string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	return &FieldError{File: file, Line: line, Msg: "not valid YAML" + where + ": " + msg}
}

// withLine gives a validation error its file and line.
func withLine(err error, file string, root *yaml.Node) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		fe.File = file
		fe.Line = lineOf(root, fe.Field)
		return err
	}
	var se *subject.FieldError
	if errors.As(err, &se) {
		return &FieldError{File: file, Line: lineOf(root, se.Field), Field: se.Field, Msg: se.Msg}
	}
	return &FieldError{File: file, Msg: err.Error()}
}

// SetDefaults fills in what a scenario built in Go leaves out, as Parse
// does for a file (a zero field takes its default: in Go there is no
// telling an explicit zero from an unset one).
func (s *Scenario) SetDefaults() error { return s.setDefaults(nil) }

// Validate checks a scenario built in Go, as Parse checks a file.
func (s *Scenario) Validate() error { return s.validate() }

// setDefaults fills in defaults. present holds the field paths the file
// wrote: a zero it wrote is honoured (workload.objects: 0 creates no
// objects) or refused, never silently replaced.
func (s *Scenario) setDefaults(present map[string]bool) error {
	has := func(f string) bool { return present[f] }
	if s.Seed == 0 && !has("seed") {
		s.Seed = 1
	}
	if s.Backend == "" {
		s.Backend = "local"
	}
	if s.Subject == nil && s.Operator.Cache == "" {
		s.Operator.Cache = "map"
	}
	if s.Subject != nil {
		s.Subject.SetDefaults()
	}
	rd := &s.Kubelet.ReadyDelay
	if rd.Distribution == "" {
		rd.Distribution = "uniform"
	}
	if !has("kubelet.readyDelay.min") && !has("kubelet.readyDelay.max") {
		if rd.Min.Duration == 0 && rd.Max.Duration == 0 {
			rd.Min.Duration, rd.Max.Duration = 100*time.Millisecond, 500*time.Millisecond
		}
	}
	if rd.Max.Duration == 0 && !has("kubelet.readyDelay.max") {
		rd.Max = rd.Min
	}
	if s.World != nil && s.World.Nodes == 0 && !has("world.nodes") {
		s.World.Nodes = 3
	}
	w := &s.Workload
	if w.Duration.Duration == 0 && !has("workload.duration") {
		w.Duration.Duration = 20 * time.Second
	}
	if w.Objects == 0 && !has("workload.objects") && len(w.Operations) == 0 {
		w.Objects = 3
	}
	if w.Namespace == "" {
		if has("workload.namespace") {
			return fieldErr("workload.namespace", "empty: name a namespace, or leave the field out for %q", "default")
		}
		w.Namespace = "default"
	}
	if w.InitialReplicas == (IntRange{}) && !has("workload.initialReplicas") {
		w.InitialReplicas = IntRange{Min: 1, Max: 3}
	}
	if w.Scale.Replicas == (IntRange{}) && !has("workload.scale.replicas") {
		w.Scale.Replicas = IntRange{Min: 0, Max: 5}
	}
	for i := range s.Faults {
		f := &s.Faults[i]
		// The burst's loss defaults to 1 inside the burst; a 0 the file
		// wrote would silently become 1.
		if bl := fmt.Sprintf("faults[%d].burst.loss", i); has(bl) && f.Burst != nil && f.Burst.Loss == 0 {
			return fieldErr(bl, "0 is not a usable value: leave the field out for the default (1)")
		}
		before := *f
		f.setDefaults()
		// A parameter the file set to zero that the type's default then
		// replaced: say so rather than run with another value.
		bv, av := reflect.ValueOf(before), reflect.ValueOf(*f)
		for j := 0; j < bv.NumField(); j++ {
			name, ok := yamlName(bv.Type().Field(j))
			field := fmt.Sprintf("faults[%d].%s", i, name)
			if ok && has(field) && bv.Field(j).IsZero() && !av.Field(j).IsZero() {
				return fieldErr(field, "0 is not a usable value: leave the field out for the default (%v)", av.Field(j).Interface())
			}
		}
	}
	inv := &s.Invariants
	if inv.Drift.ConvergeWithin.Duration == 0 && !has("invariants.drift.convergeWithin") {
		inv.Drift.ConvergeWithin.Duration = 15 * time.Second
	}
	if inv.Drift.Staleness.Duration == 0 && !has("invariants.drift.staleness") {
		inv.Drift.Staleness.Duration = 5 * time.Second
	}
	return nil
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

func checkDuration(field string, d Duration) error {
	if d.Duration < 0 {
		return fieldErr(field, "must not be negative, got %s", d)
	}
	if d.Duration > MaxDuration {
		return fieldErr(field, "%s is longer than the limit of %s", d, MaxDuration)
	}
	return nil
}

func (s *Scenario) validate() error {
	if s.Name == "" {
		return fieldErr("name", "required")
	}
	if len(s.Name) > MaxNameLength {
		return fieldErr("name", "%d characters: at most %d (it names run directories)", len(s.Name), MaxNameLength)
	}
	for _, r := range s.Name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return fieldErr("name", "%q: use lower-case letters, digits and '-'", s.Name)
		}
	}
	if err := oneOf("backend", s.Backend, Backends); err != nil {
		return err
	}
	if err := s.validateOperator(); err != nil {
		return err
	}
	if s.Subject != nil {
		if err := s.Subject.Validate("subject"); err != nil {
			return err
		}
	}
	if wd := s.World; wd != nil {
		if wd.Nodes < 0 || wd.Nodes > 100 {
			return fieldErr("world.nodes", "must be within 0..100, got %d", wd.Nodes)
		}
		for i, c := range wd.Controllers {
			if c == "" || strings.ContainsAny(c, " ,\t") {
				return fieldErr(fmt.Sprintf("world.controllers[%d]", i), "%q is not a controller name (kube-controller-manager --controllers)", c)
			}
			if c == "none" && len(wd.Controllers) > 1 {
				return fieldErr(fmt.Sprintf("world.controllers[%d]", i), "none stands alone")
			}
		}
	}
	rd := s.Kubelet.ReadyDelay
	if err := oneOf("kubelet.readyDelay.distribution", rd.Distribution, Distributions); err != nil {
		return err
	}
	for _, d := range []struct {
		field string
		v     Duration
	}{{"kubelet.readyDelay.min", rd.Min}, {"kubelet.readyDelay.max", rd.Max}, {"kubelet.readyDelay.mean", rd.Mean}} {
		if err := checkDuration(d.field, d.v); err != nil {
			return err
		}
	}
	if rd.Max.Duration < rd.Min.Duration {
		return fieldErr("kubelet.readyDelay.max", "must be at least min (%s), got %s", rd.Min, rd.Max)
	}
	if rd.Distribution == "exponential" && rd.Mean.Duration <= 0 {
		return fieldErr("kubelet.readyDelay.mean", "exponential needs a positive mean")
	}
	w := s.Workload
	if err := checkDuration("workload.duration", w.Duration); err != nil {
		return err
	}
	if w.Objects < 0 || w.Objects > 100 {
		return fieldErr("workload.objects", "must be between 0 and 100, got %d", w.Objects)
	}
	if err := checkRange("workload.initialReplicas", w.InitialReplicas); err != nil {
		return err
	}
	if err := checkDuration("workload.scale.every", w.Scale.Every); err != nil {
		return err
	}
	if err := checkRange("workload.scale.replicas", w.Scale.Replicas); err != nil {
		return err
	}
	if !(w.Annotate.Rate >= 0 && w.Annotate.Rate <= 1000) { // NaN too
		return fieldErr("workload.annotate.rate", "must be between 0 and 1000 per second, got %g", w.Annotate.Rate)
	}
	if w.DeleteObjects < 0 || w.DeleteObjects > w.Objects {
		return fieldErr("workload.deleteObjects", "must be between 0 and objects (%d), got %d", w.Objects, w.DeleteObjects)
	}
	if s.Subject != nil && s.Subject.Replicas == "" && len(w.Operations) == 0 && w.Scale.Every.Duration > 0 {
		return fieldErr("workload.scale.every", "scales objects, but subject.replicas names no replica field")
	}
	if err := checkOperationCount(w); err != nil {
		return err
	}
	if err := validateOperations(w); err != nil {
		return err
	}
	if err := validateFaults(s.Faults, s.Workload.Duration.Duration); err != nil {
		return err
	}
	if s.Subject != nil {
		for i, f := range s.Faults {
			if f.Type == FaultWithholdEvents && f.Resource == ResourceKVClusters {
				return fieldErr(fmt.Sprintf("faults[%d].resource", i), "kvclusters is the reference operator's kind: this scenario tests %s (use all or pods)", s.Subject.Kind)
			}
		}
	}
	inv := s.Invariants
	for _, d := range []struct {
		field string
		v     Duration
	}{
		{"invariants.drift.convergeWithin", inv.Drift.ConvergeWithin},
		{"invariants.drift.staleness", inv.Drift.Staleness},
		{"invariants.latency.mean", inv.Latency.Mean},
		{"invariants.latency.p50", inv.Latency.P50},
		{"invariants.latency.p90", inv.Latency.P90},
		{"invariants.latency.p99", inv.Latency.P99},
		{"invariants.latency.max", inv.Latency.Max},
	} {
		if err := checkDuration(d.field, d.v); err != nil {
			return err
		}
	}
	return nil
}

// checkOperationCount refuses a workload that would make more operations
// than MaxOperations, naming the field that asks for them.
func checkOperationCount(w Workload) error {
	if len(w.Operations) > MaxOperations {
		return fieldErr("workload.operations", "%d operations: more than the limit of %d per run", len(w.Operations), MaxOperations)
	}
	if len(w.Operations) > 0 {
		return nil
	}
	end := w.Duration.Duration
	if every := w.Scale.Every.Duration; every > 0 && w.Objects > 0 {
		if n := int64(end / every); n > MaxOperations {
			return fieldErr("workload.scale.every", "%s over %s makes %d operations: more than the limit of %d per run", w.Scale.Every, w.Duration, n, MaxOperations)
		}
	}
	if r := w.Annotate.Rate; r > 0 && w.Objects > 0 {
		if n := r * end.Seconds(); n > MaxOperations {
			return fieldErr("workload.annotate.rate", "%g per second over %s makes %.0f operations: more than the limit of %d per run", r, w.Duration, n, MaxOperations)
		}
	}
	return nil
}

func (s *Scenario) validateOperator() error {
	o := s.Operator
	for _, k := range slices.Sorted(maps.Keys(o.Env)) {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fieldErr("operator.env", "%q is not a variable name", k)
		}
		if err := checkTemplate(o.Env[k]); err != nil {
			return fieldErr("operator.env."+k, "%v", err)
		}
	}
	if s.Subject == nil {
		for _, f := range []struct {
			name string
			set  bool
		}{{"command", len(o.Command) > 0}, {"dir", o.Dir != ""}, {"name", o.Name != ""},
			{"ready", o.Ready != (Ready{})}, {"external", o.External}} {
			if f.set {
				return fieldErr("operator."+f.name, "is for your own operator: declare its subject (subject.kind, properties) too; without a subject the scenario tests the reference operator")
			}
		}
		if err := oneOf("operator.cache", o.Cache, CacheVariants); err != nil {
			return err
		}
		for i, b := range o.Bugs {
			if err := oneOf(fmt.Sprintf("operator.bugs[%d]", i), b, bugs.Names()); err != nil {
				return err
			}
		}
	} else {
		for _, f := range []struct {
			name string
			set  bool
		}{{"cache", o.Cache != ""}, {"bugs", len(o.Bugs) > 0}} {
			if f.set {
				return fieldErr("operator."+f.name, "is an option of the reference operator, and this scenario tests %s", s.Subject.Kind)
			}
		}
		if len(o.Command) > 0 && o.External {
			return fieldErr("operator.external", "an external operator is not started: leave out command")
		}
		if s.World != nil && o.External && s.World.Controllers != nil && len(s.World.Controllers) == 1 && s.World.Controllers[0] == "none" && o.Name == "kube-controller-manager" {
			return fieldErr("world.controllers", "the operator under test is kube-controller-manager, and the world starts none")
		}
		for i, a := range o.Command {
			if err := checkTemplate(a); err != nil {
				return fieldErr(fmt.Sprintf("operator.command[%d]", i), "%v", err)
			}
		}
		if len(o.Command) > 0 && o.Command[0] == "" {
			return fieldErr("operator.command[0]", "empty program name")
		}
		if o.Ready.HTTP != "" && o.Ready.Log != "" {
			return fieldErr("operator.ready.log", "set http or log, not both")
		}
		if err := checkTemplate(o.Ready.HTTP); err != nil {
			return fieldErr("operator.ready.http", "%v", err)
		}
		if o.Ready.Log != "" {
			if _, err := regexp.Compile(o.Ready.Log); err != nil {
				return fieldErr("operator.ready.log", "not a regular expression: %v", err)
			}
		}
		if err := checkDuration("operator.ready.after", o.Ready.After); err != nil {
			return err
		}
		if err := checkDuration("operator.ready.timeout", o.Ready.Timeout); err != nil {
			return err
		}
	}
	if o.GOMAXPROCS < 0 || o.GOMAXPROCS > 256 {
		return fieldErr("operator.gomaxprocs", "must be within 0..256, got %d", o.GOMAXPROCS)
	}
	return nil
}

// TemplateFields are what operator command, env and ready templates may
// use.
var TemplateFields = []string{"Kubeconfig", "MetricsAddr", "ProbeAddr", "Namespace"}

func checkTemplate(s string) error {
	rest := s
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			return nil
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return fmt.Errorf("%q: unterminated {{", s)
		}
		f := strings.TrimSpace(rest[i+2 : i+j])
		ok := false
		for _, t := range TemplateFields {
			ok = ok || f == "."+t
		}
		if !ok {
			return fmt.Errorf("%q: unknown template field %s (known: .%s)", s, f, strings.Join(TemplateFields, ", ."))
		}
		rest = rest[i+j+2:]
	}
}

// ExpandTemplate fills a command, env or ready template.
func ExpandTemplate(s string, vals map[string]string) string {
	for _, f := range TemplateFields {
		s = strings.ReplaceAll(s, "{{."+f+"}}", vals[f])
		s = strings.ReplaceAll(s, "{{ ."+f+" }}", vals[f])
	}
	return s
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
