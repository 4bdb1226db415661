package local

import "go.uber.org/goleak"

// leakOptions lists goroutines that live for the whole process by design
// (started once by libraries' init or first use), not leaks of a run.
func leakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
	}
}
