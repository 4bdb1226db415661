package chaos

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	cm "github.com/chaos-mesh/chaos-mesh/api/v1alpha1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/driftlab/driftlab/deploy"
	"github.com/driftlab/driftlab/operator"
	"github.com/driftlab/driftlab/scenarios"
)

// Defaults of Options.
const (
	DefaultNamespace         = deploy.DefaultNamespace
	DefaultOperatorNamespace = deploy.DefaultNamespace
	DefaultImage             = deploy.DefaultImage
	// DefaultEtcdURL is etcd's client URL on a kubeadm (and kind)
	// control-plane node's loopback; the watchstorm Job reaches it with the
	// node's etcd certificates (EtcdPKI).
	DefaultEtcdURL = "https://127.0.0.1:2379"
	// FaultsAnnotation is scenarios.FaultsAnnotation, which the exported
	// objects carry.
	FaultsAnnotation = scenarios.FaultsAnnotation
	// EtcdPKI is where kubeadm keeps etcd's CA and client certificates.
	EtcdPKI = "/etc/kubernetes/pki/etcd"
	// OperatorLabel selects the operator's Pod (deploy/config/operator.yaml).
	OperatorLabel = "app.kubernetes.io/name"
	// OperatorLabelValue is OperatorLabel's value on the operator's Pod.
	OperatorLabelValue = deploy.Name
	// OperatorContainer is the operator's container name.
	OperatorContainer = deploy.Container
)

// Options configure an export. The zero value of each field means its
// default.
type Options struct {
	// Namespace holds the Workflow and the Jobs. Default DefaultNamespace.
	Namespace string
	// OperatorNamespace is where the operator's Deployment runs. Default
	// DefaultOperatorNamespace.
	OperatorNamespace string
	// Image is the driftlab image the watchstorm Job runs. Default
	// DefaultImage.
	Image string
	// EtcdURL is the etcd endpoint the watchstorm Job uses, from the
	// control-plane node's network. Default DefaultEtcdURL. An https URL
	// makes the Job mount EtcdPKI from the node and use its CA and
	// healthcheck-client certificate.
	EtcdURL string
}

func (o *Options) defaults() {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.OperatorNamespace == "" {
		o.OperatorNamespace = DefaultOperatorNamespace
	}
	if o.Image == "" {
		o.Image = DefaultImage
	}
	if o.EtcdURL == "" {
		o.EtcdURL = DefaultEtcdURL
	}
}

// Skipped is a fault that was not exported, and why.
type Skipped struct {
	Index  int
	Type   string
	Reason string
}

// String says which fault was skipped and why, as the YAML comment does.
func (s Skipped) String() string {
	return fmt.Sprintf("faults[%d] (%s) skipped: %s", s.Index, s.Type, s.Reason)
}

// Export is a scenario rendered as Chaos Mesh objects.
type Export struct {
	// Scenario is the scenario's name.
	Scenario string
	// Objects are the objects to create, in order (the Workflow first, then
	// the Jobs). Each has its TypeMeta set.
	Objects []runtime.Object
	// Skipped lists the faults that were not exported.
	Skipped []Skipped
	// Notes say what an exported fault could not carry over.
	Notes []string
	// OperatorArgs are extra arguments for the reference operator
	// (`driftlab operator`): gc-assist-pressure's own heap growth
	// (--gc-pressure), which no Chaos Mesh object can cause. They are
	// printed as "# OPERATOR-ARGS" lines; scripts/chaos.sh adds them to the
	// operator's Deployment just before the workload starts.
	OperatorArgs []string
}

// Build renders the faults of s. It fails only on a scenario it cannot
// read; a fault it cannot export is listed in Skipped.
func Build(s *scenarios.Scenario, o Options) (*Export, error) {
	o.defaults()
	e := &Export{Scenario: s.Name}
	wf := &cm.Workflow{
		TypeMeta:   metav1.TypeMeta{APIVersion: cm.SchemeGroupVersion.String(), Kind: cm.KindWorkflow},
		ObjectMeta: meta("driftlab-"+s.Name, o.Namespace, s.Name),
	}
	root := cm.Template{Name: "faults", Type: cm.TypeParallel}
	var jobs []runtime.Object
	var covered []string // indices of the faults the Workflow runs
	workload := s.Workload.Duration.Duration
	for i := range s.Faults {
		f := &s.Faults[i]
		skip := func(reason string) { e.Skipped = append(e.Skipped, Skipped{Index: i, Type: f.Type, Reason: reason}) }
		if f.AfterOps > 0 {
			skip(fmt.Sprintf("afterOps: %d starts the fault after a workload operation; a Chaos Mesh schedule has only times", f.AfterOps))
			continue
		}
		start, dur := f.Start.Duration, f.Duration.Duration
		if dur == 0 {
			dur = workload - start
		}
		if dur <= 0 {
			skip(fmt.Sprintf("its window (from %s to the end of a %s workload) is empty", f.Start, s.Workload.Duration))
			continue
		}
		name := fmt.Sprintf("fault-%d-%s", i, f.Type)
		note := func(format string, args ...any) {
			e.Notes = append(e.Notes, fmt.Sprintf("faults[%d] (%s): ", i, f.Type)+fmt.Sprintf(format, args...))
		}
		var chaos *cm.Template
		switch f.Type {
		case scenarios.FaultWALFsyncDelay:
			chaos = &cm.Template{Name: name, Type: cm.TypeIOChaos, EmbedChaos: &cm.EmbedChaos{IOChaos: ioChaos(f, note)}}
		case scenarios.FaultNetworkRetransmit:
			spec, reason := networkChaos(f, o, note)
			if spec == nil {
				skip(reason)
				continue
			}
			chaos = &cm.Template{Name: name, Type: cm.TypeNetworkChaos, EmbedChaos: &cm.EmbedChaos{NetworkChaos: spec}}
		case scenarios.FaultGCAssistPressure:
			chaos = &cm.Template{Name: name, Type: cm.TypeStressChaos, EmbedChaos: &cm.EmbedChaos{StressChaos: stressChaos(f, o, note)}}
			g := operator.GCPressure{Entries: f.Entries, Rate: f.Rate, After: start, For: dur}
			e.OperatorArgs = append(e.OperatorArgs, "--gc-pressure="+g.String())
		case scenarios.FaultWatcherExhaustion:
			jobs = append(jobs, watchstormJob(s.Name, i, f, start, dur, o, note))
			continue
		case scenarios.FaultFailpoint:
			skip("failpoints need a failpoint-enabled build of etcd or the operator (make etcd-failpoints); Chaos Mesh cannot switch them")
			continue
		case scenarios.FaultCrashRestart:
			skip("a perturbation of the virtual backend's model (a crash at a chosen point of a reconcile); a PodChaos pod-kill would kill the operator at an arbitrary moment instead")
			continue
		default:
			if scenarios.FaultTypes[f.Type].VirtualOnly {
				skip("a perturbation of the virtual backend's model; a real cluster has no switch for it")
			} else {
				skip("no Chaos Mesh mapping for this fault type")
			}
			continue
		}
		chaos.Deadline = ptr(dur.String())
		branch := cm.Template{Name: fmt.Sprintf("fault-%d", i), Type: cm.TypeSerial}
		if start > 0 {
			wait := cm.Template{Name: fmt.Sprintf("fault-%d-wait", i), Type: cm.TypeSuspend, Deadline: ptr(start.String())}
			wf.Spec.Templates = append(wf.Spec.Templates, wait)
			branch.Children = append(branch.Children, wait.Name)
		}
		wf.Spec.Templates = append(wf.Spec.Templates, *chaos)
		branch.Children = append(branch.Children, chaos.Name)
		wf.Spec.Templates = append(wf.Spec.Templates, branch)
		root.Children = append(root.Children, branch.Name)
		covered = append(covered, strconv.Itoa(i))
	}
	if len(root.Children) > 0 {
		wf.Annotations = map[string]string{FaultsAnnotation: strings.Join(covered, ",")}
		wf.Spec.Entry = root.Name
		wf.Spec.Templates = append([]cm.Template{root}, wf.Spec.Templates...)
		e.Objects = append(e.Objects, wf)
	}
	e.Objects = append(e.Objects, jobs...)
	return e, nil
}

func meta(name, ns, scenario string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{
		"app.kubernetes.io/managed-by": "driftlab", "driftlab.io/scenario": scenario,
	}}
}

func ptr[T any](v T) *T { return &v }

// controlPlanePod selects a static control-plane Pod of kubeadm (and kind)
// by its component label.
func controlPlanePod(component string) cm.PodSelector {
	return cm.PodSelector{Mode: cm.AllMode, Selector: cm.PodSelectorSpec{GenericSelectorSpec: cm.GenericSelectorSpec{
		Namespaces: []string{"kube-system"}, LabelSelectors: map[string]string{"component": component},
	}}}
}

func operatorPod(o Options) cm.PodSelector {
	return cm.PodSelector{Mode: cm.AllMode, Selector: cm.PodSelectorSpec{GenericSelectorSpec: cm.GenericSelectorSpec{
		Namespaces: []string{o.OperatorNamespace}, LabelSelectors: map[string]string{OperatorLabel: OperatorLabelValue},
	}}}
}

func ioChaos(f *scenarios.Fault, note func(string, ...any)) *cm.IOChaosSpec {
	delay := f.Delay.Duration + f.Jitter.Duration/2
	if f.Jitter.Duration > 0 {
		note("IOChaos has no jitter: every delayed fsync waits the mean, %s (delay %s + jitter %s / 2)", delay, f.Delay, f.Jitter)
	}
	percent := int(math.Round(f.Probability * 100))
	if percent < 1 {
		percent = 1
		note("probability %g rounds below Chaos Mesh's 1%% granularity; using 1%%", f.Probability)
	}
	return &cm.IOChaosSpec{
		ContainerSelector: cm.ContainerSelector{PodSelector: controlPlanePod("etcd"), ContainerNames: []string{"etcd"}},
		Action:            cm.IoLatency,
		Delay:             delay.String(),
		Methods:           []cm.IoMethod{cm.Fsync},
		Percent:           percent,
		VolumePath:        "/var/lib/etcd",
		Path:              "/var/lib/etcd/member/wal/**/*",
	}
}

func networkChaos(f *scenarios.Fault, o Options, note func(string, ...any)) (*cm.NetworkChaosSpec, string) {
	spec := &cm.NetworkChaosSpec{Direction: cm.To}
	switch f.Link {
	case scenarios.LinkOperatorAPIServer:
		spec.PodSelector = operatorPod(o)
	case scenarios.LinkAPIServerEtcd:
		spec.PodSelector = controlPlanePod("etcd")
		spec.Device = "lo" // every loopback packet leaves through lo: both ways
	default:
		return nil, fmt.Sprintf("link %q has no Pod selector", f.Link)
	}
	if f.Loss > 0 {
		spec.Loss = &cm.LossSpec{Loss: strconv.FormatFloat(f.Loss*100, 'f', -1, 64), Correlation: "0"}
	}
	if f.Latency.Duration > 0 {
		spec.Delay = &cm.DelaySpec{Latency: f.Latency.Duration.String(), Correlation: "0", Jitter: "0ms"}
	}
	switch {
	case spec.Loss != nil && spec.Delay != nil:
		spec.Action = cm.NetemAction
	case spec.Loss != nil:
		spec.Action = cm.LossAction
	case spec.Delay != nil:
		spec.Action = cm.DelayAction
	case f.Burst != nil:
		return nil, "only burst (and resetConnections) is set, and Chaos Mesh has no schedule of blackouts"
	default:
		return nil, "only resetConnections is set, and Chaos Mesh cannot reset established connections"
	}
	if f.ResetConnections {
		note("resetConnections is not exported (Chaos Mesh cannot reset established connections)")
	}
	if f.Burst != nil {
		note("burst is not exported (Chaos Mesh's loss has a correlation, not a schedule of blackouts)")
	}
	if f.Backpressure {
		note("backpressure is not exported (a cluster's network has its own buffers)")
	}
	if f.MinRTO.Duration != 200*time.Millisecond || f.MaxRTO.Duration != 120*time.Second {
		note("minRTO/maxRTO (%s/%s) are the kernel's on a real cluster (tcp_rto_min, 200ms..120s); not exported", f.MinRTO, f.MaxRTO)
	}
	return spec, ""
}

func stressChaos(f *scenarios.Fault, o Options, note func(string, ...any)) *cm.StressChaosSpec {
	mb := int(math.Ceil(float64(f.Entries) * 256 * 2 / 1e6))
	note("StressChaos adds %dMB of memory pressure in the operator's container (a stress-ng process), not GC assists in the operator's heap; the operator's own map growth (rate %g/s) comes from its --gc-pressure flag (OPERATOR-ARGS below), timed from the operator's start", mb, f.Rate)
	return &cm.StressChaosSpec{
		ContainerSelector: cm.ContainerSelector{PodSelector: operatorPod(o), ContainerNames: []string{OperatorContainer}},
		Stressors: &cm.Stressors{MemoryStressor: &cm.MemoryStressor{
			Stressor: cm.Stressor{Workers: 1}, Size: fmt.Sprintf("%dMB", mb),
		}},
	}
}

// WatchstormArgs are the arguments of `driftlab watchstorm` for a
// watcher-exhaustion fault.
func WatchstormArgs(f *scenarios.Fault, endpoint string, delay, duration time.Duration) []string {
	return []string{"watchstorm", "--endpoints", endpoint,
		"--clients", strconv.Itoa(f.Clients), "--watchers", strconv.Itoa(f.Watchers),
		"--slow-consumers", strconv.Itoa(f.SlowConsumers), "--history", strconv.Itoa(f.History),
		"--delay", delay.String(), "--duration", duration.String()}
}

func watchstormJob(scenario string, i int, f *scenarios.Fault, start, dur time.Duration, o Options, note func(string, ...any)) *batchv1.Job {
	if f.MaxConcurrentStreams > 0 {
		note("maxConcurrentStreams is etcd's start-up flag (--max-concurrent-streams); set it in deploy/kind.yaml, not exported")
	}
	m := meta(fmt.Sprintf("driftlab-%s-watchstorm-%d", scenario, i), o.Namespace, scenario)
	m.Annotations = map[string]string{FaultsAnnotation: strconv.Itoa(i)}
	c := corev1.Container{
		Name: "watchstorm", Image: o.Image, ImagePullPolicy: corev1.PullIfNotPresent,
		Command: append([]string{"driftlab"}, WatchstormArgs(f, o.EtcdURL, start, dur)...),
	}
	var vols []corev1.Volume
	if strings.HasPrefix(o.EtcdURL, "https://") {
		c.Command = append(c.Command, "--cacert", EtcdPKI+"/ca.crt",
			"--cert", EtcdPKI+"/healthcheck-client.crt", "--key", EtcdPKI+"/healthcheck-client.key")
		c.VolumeMounts = []corev1.VolumeMount{{Name: "etcd-pki", MountPath: EtcdPKI, ReadOnly: true}}
		// The keys on the node are root's, mode 0600.
		c.SecurityContext = &corev1.SecurityContext{RunAsUser: ptr(int64(0))}
		vols = []corev1.Volume{{Name: "etcd-pki", VolumeSource: corev1.VolumeSource{
			HostPath: &corev1.HostPathVolumeSource{Path: EtcdPKI, Type: ptr(corev1.HostPathDirectory)},
		}}}
	}
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: m,
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr(int32(0)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: m.Labels},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					// etcd's loopback listener is on the control-plane node.
					HostNetwork:  true,
					NodeSelector: map[string]string{"node-role.kubernetes.io/control-plane": ""},
					Tolerations: []corev1.Toleration{{
						Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule,
					}},
					Containers: []corev1.Container{c},
					Volumes:    vols,
				},
			},
		},
	}
}

// YAML renders the export as multi-document YAML: a comment header naming
// the scenario, the skipped faults and the notes, then one document per
// object with its status and empty fields left out.
func (e *Export) YAML() ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Chaos Mesh objects for driftlab scenario %q (driftlab chaos export).\n", e.Scenario)
	fmt.Fprintf(&b, "# Times count from creation: create them when the workload starts\n# (driftlab run --backend cluster --chaos FILE does).\n")
	for _, s := range e.Skipped {
		fmt.Fprintf(&b, "# SKIPPED %s\n", s)
	}
	for _, n := range e.Notes {
		fmt.Fprintf(&b, "# NOTE %s\n", n)
	}
	for _, a := range e.OperatorArgs {
		fmt.Fprintf(&b, "# OPERATOR-ARGS %s\n", a)
	}
	if len(e.Objects) == 0 {
		fmt.Fprintf(&b, "# (no fault could be exported)\n")
	}
	for _, obj := range e.Objects {
		u, err := Unstructured(obj)
		if err != nil {
			return nil, err
		}
		y, err := yaml.Marshal(u)
		if err != nil {
			return nil, err
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.Bytes(), nil
}

// Unstructured converts an exported object to a map without its status and
// its null creationTimestamp, as it is applied.
func Unstructured(obj runtime.Object) (map[string]any, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	delete(u, "status")
	if m, ok := u["metadata"].(map[string]any); ok {
		delete(m, "creationTimestamp")
	}
	if spec, ok := u["spec"].(map[string]any); ok {
		if t, ok := spec["template"].(map[string]any); ok {
			if m, ok := t["metadata"].(map[string]any); ok {
				delete(m, "creationTimestamp")
			}
		}
	}
	return u, nil
}

// GVK returns an exported object's group, version and kind.
func GVK(obj runtime.Object) schema.GroupVersionKind {
	return obj.GetObjectKind().GroupVersionKind()
}

// Describe lists the objects in one line each ("Workflow driftlab-system/x").
func (e *Export) Describe() string {
	var lines []string
	for _, obj := range e.Objects {
		m, _ := Unstructured(obj)
		md, _ := m["metadata"].(map[string]any)
		lines = append(lines, fmt.Sprintf("%s %s/%s", GVK(obj).Kind, md["namespace"], md["name"]))
	}
	return strings.Join(lines, "\n")
}
