package scenarios

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/driftlab/driftlab/faults/failpoint"
)

// Fault types.
// FaultsAnnotation lists, on each object of a scenario exported for a real
// cluster (driftlab export), the indices of the scenario's faults it
// injects ("0,2"): the cluster backend reports those faults' windows and
// the others as skipped.
const FaultsAnnotation = "driftlab.io/faults"

const (
	FaultWALFsyncDelay     = "wal-fsync-delay"
	FaultNetworkRetransmit = "network-retransmit"
	FaultWatcherExhaustion = "watcher-exhaustion"
	FaultGCAssistPressure  = "gc-assist-pressure"

	// Controller perturbations (Sieve, OSDI'22), virtual backend only.
	FaultStaleRead      = "stale-read"
	FaultWithholdEvents = "withhold-events"
	FaultCrashRestart   = "crash-restart"

	// FaultFailpoint switches a failpoint on (failpoint-enabled builds).
	FaultFailpoint = "failpoint"
)

// Resources whose events withhold-events can withhold.
const (
	ResourceAll        = "all"
	ResourcePods       = "pods"
	ResourceKVClusters = "kvclusters"
)

// Links a network fault can sit on.
const (
	LinkAPIServerEtcd     = "apiserver-etcd"
	LinkOperatorAPIServer = "operator-apiserver"
	// LinkControllerManagerAPIServer is kube-controller-manager's link to
	// the apiserver (a scenario with a world).
	LinkControllerManagerAPIServer = "controller-manager-apiserver"
)

// Fault is one injected fault: a type, a schedule and the type's parameters.
// Parameters that do not belong to the type are an error on load.
type Fault struct {
	// Type is one of FaultTypes.
	Type string `yaml:"type" json:"type"`

	// Start is when the fault starts, from the start of the workload.
	Start Duration `yaml:"start" json:"start"`
	// AfterOps, when set, starts the fault after the N-th workload operation
	// instead of at Start.
	AfterOps int `yaml:"afterOps" json:"afterOps,omitempty"`
	// Duration is how long the fault lasts; 0 means to the end of the run.
	Duration Duration `yaml:"duration" json:"duration"`

	// Delay is the added latency of each fsync (wal-fsync-delay).
	Delay Duration `yaml:"delay" json:"delay,omitempty"`
	// Jitter adds a uniform [0, Jitter) to each delay (wal-fsync-delay).
	Jitter Duration `yaml:"jitter" json:"jitter,omitempty"`
	// Probability is the chance that one fsync is delayed; default 1
	// (wal-fsync-delay).
	Probability float64 `yaml:"probability" json:"probability,omitempty"`

	// Link is where the proxy sits: apiserver-etcd (default) or
	// operator-apiserver (network-retransmit).
	Link string `yaml:"link" json:"link,omitempty"`
	// Loss is the probability that a chunk is lost and retransmitted after an
	// RTO stall (network-retransmit).
	Loss float64 `yaml:"loss" json:"loss,omitempty"`
	// MinRTO is the first retransmission timeout; it doubles on consecutive
	// losses. Default 200ms, Linux's minimum (network-retransmit).
	MinRTO Duration `yaml:"minRTO" json:"minRTO,omitempty"`
	// MaxRTO caps the doubling. Default 120s, as Linux (network-retransmit).
	MaxRTO Duration `yaml:"maxRTO" json:"maxRTO,omitempty"`
	// Latency is a plain one-way latency added on top (network-retransmit).
	Latency Duration `yaml:"latency" json:"latency,omitempty"`
	// ResetConnections resets every proxied connection when the fault
	// starts, so clients reconnect and re-watch (network-retransmit).
	ResetConnections bool `yaml:"resetConnections" json:"resetConnections,omitempty"`
	// Burst adds bursty loss: seeded blackouts of the link during which
	// transmissions are lost with the burst's loss, so the backed-off RTO
	// freezes the connection past the blackout's end (network-retransmit).
	Burst *Burst `yaml:"burst" json:"burst,omitempty"`
	// Backpressure makes the link buffer what a real network path does
	// (local backend: TCP MSS 1448, 64 KiB receive buffers, four chunks
	// queued behind a stall) for the whole run, so a stall fills the
	// sender's buffers and blocks its writes; loopback's buffers would
	// hold seconds of data (network-retransmit).
	Backpressure bool `yaml:"backpressure" json:"backpressure,omitempty"`

	// Clients is the number of client connections re-creating watchers;
	// default 8 (watcher-exhaustion).
	Clients int `yaml:"clients" json:"clients,omitempty"`
	// Watchers is the number of watchers each client keeps re-creating from
	// an old revision; default 64 (watcher-exhaustion).
	Watchers int `yaml:"watchers" json:"watchers,omitempty"`
	// SlowConsumers is the number of watchers that never read their stream,
	// which etcd turns into victims (watcher-exhaustion).
	SlowConsumers int `yaml:"slowConsumers" json:"slowConsumers,omitempty"`
	// History is the number of revisions (1 KiB values, outside the
	// Kubernetes registry) written before the fault so that re-watching from
	// an old revision has history to replay; default 20000
	// (watcher-exhaustion).
	History int `yaml:"history" json:"history,omitempty"`
	// MaxConcurrentStreams caps gRPC streams per etcd client connection for
	// the whole run; 0 keeps etcd's default (watcher-exhaustion).
	MaxConcurrentStreams int `yaml:"maxConcurrentStreams" json:"maxConcurrentStreams,omitempty"`

	// Entries is how many map[int][256]byte entries each growth cycle
	// inserts; default 200000 (gc-assist-pressure).
	Entries int `yaml:"entries" json:"entries,omitempty"`
	// Rate is growth cycles per second; default 4 (gc-assist-pressure).
	Rate float64 `yaml:"rate" json:"rate,omitempty"`

	// Lag is how far behind the present the operator's reads are: they
	// see its informers' view of Lag ago; default 2s (stale-read).
	Lag Duration `yaml:"lag" json:"lag,omitempty"`
	// Resource is whose events are withheld: pods, kvclusters or all
	// (default) (withhold-events).
	Resource string `yaml:"resource" json:"resource,omitempty"`
	// RestartDelay is how long the crashed operator stays down before it
	// restarts; default 1s (crash-restart).
	RestartDelay Duration `yaml:"restartDelay" json:"restartDelay,omitempty"`

	// Name is the failpoint to switch on: one of etcd's gofail failpoints
	// (walBeforeSync, raftBeforeSave, beforeSendWatchResponse, ...) or the
	// operator's own (faults/failpoint.Catalogue) (failpoint).
	Name string `yaml:"name" json:"name,omitempty"`
	// Term is what the failpoint does while on, for example "sleep(200)"
	// (milliseconds) or "3*sleep(\"1s\")->off" (failpoint).
	Term string `yaml:"term" json:"term,omitempty"`
}

// Burst is a schedule of blackouts of a link (network-retransmit): one in
// each period of Every, its length drawn uniformly from Length, at a
// seeded offset within the period; inside it each transmission and
// retransmission is lost with probability Loss.
type Burst struct {
	// Every is the period of the blackouts.
	Every Duration `yaml:"every" json:"every"`
	// Length is the range of a blackout's length; max must be shorter
	// than every.
	Length DurationRange `yaml:"length" json:"length"`
	// Loss is the loss probability inside a blackout, in (0, 1]; default 1.
	Loss float64 `yaml:"loss" json:"loss"`
	// Established limits each blackout to the connections open when it
	// began; connections opened during it pass (a conntrack or NAT
	// failover that lost its established flows' state).
	Established bool `yaml:"established" json:"established,omitempty"`
}

// DurationRange is an inclusive range of durations.
type DurationRange struct {
	Min Duration `yaml:"min" json:"min"`
	Max Duration `yaml:"max" json:"max"`
}

// validateBurst checks a burst after defaults; field is its path.
func validateBurst(b *Burst, field string) error {
	if b.Every.Duration <= 0 || b.Every.Duration > MaxDuration {
		return fieldErr(field+".every", "must be within 0..%s (exclusive of 0), got %s", MaxDuration, b.Every)
	}
	if b.Length.Min.Duration <= 0 {
		return fieldErr(field+".length.min", "must be positive, got %s", b.Length.Min)
	}
	if b.Length.Max.Duration < b.Length.Min.Duration {
		return fieldErr(field+".length.max", "must be at least min (%s), got %s", b.Length.Min, b.Length.Max)
	}
	if b.Length.Max.Duration >= b.Every.Duration {
		return fieldErr(field+".length.max", "must be shorter than every (%s): one blackout per period, got %s", b.Every, b.Length.Max)
	}
	if !(b.Loss > 0 && b.Loss <= 1) { // refuses NaN too
		return fieldErr(field+".loss", "must be within 0..1 (exclusive of 0), got %g", b.Loss)
	}
	return nil
}

// FaultType describes one fault type of the catalogue.
type FaultType struct {
	// Summary says in one line what the fault really does.
	Summary string
	// Params are the YAML names of the type's own parameters.
	Params []string
	// Validate checks the parameters after defaults; it returns a field
	// error naming the parameter.
	Validate func(f *Fault, field string) error
	// Defaults fills in unset parameters.
	Defaults func(f *Fault)
	// VirtualOnly marks a perturbation of the virtual backend's model (no
	// mechanism on a real control plane): the local backend reports it as
	// skipped.
	VirtualOnly bool
}

// MaxGCPressureEntries bounds gc-assist-pressure's map, which the
// operator's process holds: about 630 MB at this size.
const MaxGCPressureEntries = 1_000_000

// FaultTypes is the one table of fault types.
var FaultTypes = map[string]FaultType{
	FaultWALFsyncDelay: {
		Summary: "etcd's WAL directory on a FUSE passthrough mount whose fsync waits the delay",
		Params:  []string{"delay", "jitter", "probability"},
		Defaults: func(f *Fault) {
			if f.Probability == 0 {
				f.Probability = 1
			}
		},
		Validate: func(f *Fault, field string) error {
			if f.Delay.Duration <= 0 {
				return fieldErr(field+".delay", "must be positive, got %s", f.Delay)
			}
			if f.Jitter.Duration < 0 {
				return fieldErr(field+".jitter", "must not be negative, got %s", f.Jitter)
			}
			if !(f.Probability >= 0 && f.Probability <= 1) { // NaN too
				return fieldErr(field+".probability", "must be within 0..1, got %g", f.Probability)
			}
			return nil
		},
	},
	FaultNetworkRetransmit: {
		Summary: "an in-process TCP proxy (toxiproxy) that stalls lost chunks for a doubling RTO, as TCP retransmission does",
		Params:  []string{"link", "loss", "minRTO", "maxRTO", "latency", "resetConnections", "burst", "backpressure"},
		Defaults: func(f *Fault) {
			if f.Link == "" {
				f.Link = LinkAPIServerEtcd
			}
			if f.Burst != nil && f.Burst.Loss == 0 {
				f.Burst.Loss = 1 // a file's explicit 0 is refused before defaults (setDefaults)
			}
			if f.MinRTO.Duration == 0 {
				f.MinRTO.Duration = 200 * time.Millisecond
			}
			if f.MaxRTO.Duration == 0 {
				f.MaxRTO.Duration = 120 * time.Second
			}
		},
		Validate: func(f *Fault, field string) error {
			if err := oneOf(field+".link", f.Link, []string{LinkAPIServerEtcd, LinkOperatorAPIServer, LinkControllerManagerAPIServer}); err != nil {
				return err
			}
			if !(f.Loss >= 0 && f.Loss < 1) { // NaN too
				return fieldErr(field+".loss", "must be within 0..1 (exclusive of 1), got %g", f.Loss)
			}
			if f.MinRTO.Duration <= 0 || f.MaxRTO.Duration < f.MinRTO.Duration {
				return fieldErr(field+".maxRTO", "need 0 < minRTO <= maxRTO, got %s and %s", f.MinRTO, f.MaxRTO)
			}
			if f.Latency.Duration < 0 {
				return fieldErr(field+".latency", "must not be negative, got %s", f.Latency)
			}
			if f.Burst != nil {
				if err := validateBurst(f.Burst, field+".burst"); err != nil {
					return err
				}
			}
			if f.Loss == 0 && f.Latency.Duration == 0 && !f.ResetConnections && f.Burst == nil {
				return fieldErr(field+".loss", "the fault does nothing: set loss, burst, latency or resetConnections")
			}
			return nil
		},
	},
	FaultWatcherExhaustion: {
		Summary: "sustained churn of etcd watchers re-created from an old revision, plus slow consumers, so etcd's sync loop holds the store lock",
		Params:  []string{"clients", "watchers", "slowConsumers", "history", "maxConcurrentStreams"},
		Defaults: func(f *Fault) {
			if f.Clients == 0 {
				f.Clients = 8
			}
			if f.Watchers == 0 {
				f.Watchers = 64
			}
			if f.History == 0 {
				f.History = 20000
			}
		},
		Validate: func(f *Fault, field string) error {
			for _, p := range []struct {
				name      string
				v, lo, hi int
			}{
				{"clients", f.Clients, 1, 64}, {"watchers", f.Watchers, 1, 10000},
				{"slowConsumers", f.SlowConsumers, 0, 100000}, {"history", f.History, 1, 1000000},
				{"maxConcurrentStreams", f.MaxConcurrentStreams, 0, 1 << 20},
			} {
				if p.v < p.lo || p.v > p.hi {
					return fieldErr(field+"."+p.name, "must be within %d..%d, got %d", p.lo, p.hi, p.v)
				}
			}
			return nil
		},
	},
	FaultFailpoint: {
		Summary: "switches an etcd gofail failpoint (in the embedded etcd) or one of the operator's own failpoints on with a term (failpoint-enabled builds only)",
		Params:  []string{"name", "term"},
		Validate: func(f *Fault, field string) error {
			fp, ok := failpoint.Lookup(f.Name)
			if !ok {
				return fieldErr(field+".name", "unknown failpoint %q (available: %s)", f.Name, strings.Join(failpoint.Names(), ", "))
			}
			if _, err := failpoint.ParseTerms(fp, f.Term); err != nil {
				return fieldErr(field+".term", "%v", err)
			}
			return nil
		},
	},
	FaultGCAssistPressure: {
		Summary: "inside the operator process, a goroutine that grows and copies a map[int][256]byte, forcing GC assists",
		Params:  []string{"entries", "rate"},
		Defaults: func(f *Fault) {
			if f.Entries == 0 {
				f.Entries = 200000
			}
			if f.Rate == 0 {
				f.Rate = 4
			}
		},
		Validate: func(f *Fault, field string) error {
			// The operator's process holds about 630 bytes per entry at its
			// peak (the kept map, a new one and its copy): 1,000,000 is
			// 630 MB, twice the built-in scenario's; 10,000,000 was 6 GB.
			if f.Entries < 1 || f.Entries > MaxGCPressureEntries {
				return fieldErr(field+".entries", "must be within 1..%d (about 630 bytes each in the operator's process), got %d", MaxGCPressureEntries, f.Entries)
			}
			if !(f.Rate > 0 && f.Rate <= 1000) { // NaN too
				return fieldErr(field+".rate", "must be within 0..1000 per second, got %g", f.Rate)
			}
			return nil
		},
	},
	FaultStaleRead: {
		Summary:     "virtual only: the operator's reads come from its informers' view of lag ago (a lagging apiserver)",
		Params:      []string{"lag"},
		VirtualOnly: true,
		Defaults: func(f *Fault) {
			if f.Lag.Duration == 0 {
				f.Lag.Duration = 2 * time.Second
			}
		},
		Validate: func(f *Fault, field string) error {
			if f.Lag.Duration <= 0 || f.Lag.Duration > time.Hour {
				return fieldErr(field+".lag", "must be within 0..1h (exclusive of 0), got %s", f.Lag)
			}
			return nil
		},
	},
	FaultWithholdEvents: {
		Summary:     "virtual only: the operator's informers withhold events, then relist: only the latest state per object, withheld deletes as delete-unknown tombstones",
		Params:      []string{"resource"},
		VirtualOnly: true,
		Defaults: func(f *Fault) {
			if f.Resource == "" {
				f.Resource = ResourceAll
			}
		},
		Validate: func(f *Fault, field string) error {
			return oneOf(field+".resource", f.Resource, []string{ResourceAll, ResourcePods, ResourceKVClusters})
		},
	},
	FaultCrashRestart: {
		Summary:     "virtual only: the operator crashes in the middle of a reconcile at a seeded point and restarts after restartDelay with empty caches and queue",
		Params:      []string{"restartDelay"},
		VirtualOnly: true,
		Defaults: func(f *Fault) {
			if f.RestartDelay.Duration == 0 {
				f.RestartDelay.Duration = time.Second
			}
		},
		Validate: func(f *Fault, field string) error {
			if f.RestartDelay.Duration < 0 || f.RestartDelay.Duration > time.Hour {
				return fieldErr(field+".restartDelay", "must be within 0..1h, got %s", f.RestartDelay)
			}
			return nil
		},
	},
}

// FaultTypeNames lists the fault types in order.
func FaultTypeNames() []string {
	out := make([]string, 0, len(FaultTypes))
	for n := range FaultTypes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// scheduleParams are the parameters every fault has.
var scheduleParams = []string{"type", "start", "afterOps", "duration"}

func (f *Fault) setDefaults() {
	if ft, ok := FaultTypes[f.Type]; ok && ft.Defaults != nil {
		ft.Defaults(f)
	}
}

// Window returns the fault's time window relative to the workload start;
// end is 0 for "to the end of the run". It is meaningless for AfterOps faults.
func (f *Fault) Window() (start, end time.Duration) {
	if f.Duration.Duration == 0 {
		return f.Start.Duration, 0
	}
	return f.Start.Duration, f.Start.Duration + f.Duration.Duration
}

// Describe says when the fault is on, for summaries: "wal-fsync-delay from
// 5s for 10s", "gc-assist-pressure after operation 7 until the workload ends".
func (f *Fault) Describe() string {
	when := fmt.Sprintf("from %s", f.Start)
	if f.AfterOps > 0 {
		when = fmt.Sprintf("after operation %d", f.AfterOps)
	}
	if f.Duration.Duration > 0 {
		when += fmt.Sprintf(" for %s", f.Duration)
	} else {
		when += " until the workload ends"
	}
	if f.Type == FaultFailpoint {
		return fmt.Sprintf("%s %s=%s %s", f.Type, f.Name, f.Term, when)
	}
	return f.Type + " " + when
}

// setParams lists the YAML names of the non-zero fields of f.
func (f *Fault) setParams() []string {
	v := reflect.ValueOf(f).Elem()
	var out []string
	for i := 0; i < v.NumField(); i++ {
		name, ok := yamlName(v.Type().Field(i))
		if ok && !v.Field(i).IsZero() {
			out = append(out, name)
		}
	}
	return out
}

func validateFaults(fs []Fault, workload time.Duration) error {
	for i := range fs {
		f := &fs[i]
		field := fmt.Sprintf("faults[%d]", i)
		ft, ok := FaultTypes[f.Type]
		if !ok {
			return fieldErr(field+".type", "unknown fault type %q (known: %s)", f.Type, strings.Join(FaultTypeNames(), ", "))
		}
		allowed := map[string]bool{}
		for _, p := range append(append([]string{}, scheduleParams...), ft.Params...) {
			allowed[p] = true
		}
		for _, p := range f.setParams() {
			if !allowed[p] {
				return fieldErr(field+"."+p, "not a parameter of %s (its parameters: %s)", f.Type, strings.Join(ft.Params, ", "))
			}
		}
		if f.Start.Duration < 0 {
			return fieldErr(field+".start", "must not be negative, got %s", f.Start)
		}
		if f.Duration.Duration < 0 {
			return fieldErr(field+".duration", "must not be negative, got %s", f.Duration)
		}
		// Every duration of a fault within MaxDuration: a window's end
		// (start + duration) then never overflows.
		fv := reflect.ValueOf(f).Elem()
		for j := 0; j < fv.NumField(); j++ {
			if name, ok := yamlName(fv.Type().Field(j)); ok && fv.Field(j).Type() == durationType {
				if d := fv.Field(j).Interface().(Duration); d.Duration > MaxDuration {
					return fieldErr(field+"."+name, "%s is longer than the limit of %s", d, MaxDuration)
				}
			}
		}
		if f.AfterOps < 0 {
			return fieldErr(field+".afterOps", "must not be negative, got %d", f.AfterOps)
		}
		if f.AfterOps > 0 && f.Start.Duration > 0 {
			return fieldErr(field+".afterOps", "give either start or afterOps, not both")
		}
		if f.AfterOps == 0 && workload > 0 && f.Start.Duration >= workload {
			return fieldErr(field+".start", "%s is not before the end of the workload (%s)", f.Start, workload)
		}
		if err := ft.Validate(f, field); err != nil {
			return err
		}
		// Two windows of the same fault on the same link cannot overlap: the
		// second would silently replace the first's settings.
		for j := 0; j < i; j++ {
			g := &fs[j]
			if g.Type != f.Type || g.Link != f.Link || g.Name != f.Name || g.AfterOps > 0 || f.AfterOps > 0 {
				continue
			}
			if overlap(g, f) {
				return fieldErr(field+".start", "overlaps faults[%d] (%s): windows of one fault type must not overlap", j, g.Type)
			}
		}
	}
	return nil
}

func overlap(a, b *Fault) bool {
	as, ae := a.Window()
	bs, be := b.Window()
	const forever = time.Duration(1<<63 - 1)
	if ae == 0 {
		ae = forever
	}
	if be == 0 {
		be = forever
	}
	return as < be && bs < ae
}
