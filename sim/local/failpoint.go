package local

import (
	"context"
	"errors"
	"time"

	"github.com/driftlab/driftlab/faults"
	"github.com/driftlab/driftlab/faults/failpoint"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/report"
)

// The failpoint fault type lives here rather than in package faults because
// its catalogue (faults/failpoint) is imported by scenarios, which faults
// imports; it joins the one table of fault types from here.
func init() {
	faults.Table[scenarios.FaultFailpoint] = faults.Type{Name: scenarios.FaultFailpoint, Local: newFailpointFault}
}

// failpointFault switches one failpoint on for its window: etcd's in this
// process (the embedded etcd runs here), the operator's through its command
// pipe.
type failpointFault struct {
	spec   scenarios.Fault
	plan   *faults.Plan
	info   failpoint.Info
	sleep  time.Duration
	at     time.Time
	effect map[string]float64
}

var _ faults.Fault = (*failpointFault)(nil)

func newFailpointFault(_ int, spec scenarios.Fault, p *faults.Plan) (faults.Fault, error) {
	info, ok := failpoint.Lookup(spec.Name)
	if !ok {
		return nil, errors.New("unknown failpoint " + spec.Name)
	}
	terms, err := failpoint.ParseTerms(info, spec.Term)
	if err != nil {
		return nil, err
	}
	if info.System == failpoint.SystemOperator && !p.OperatorCommands {
		return nil, &faults.SkipError{Reason: "an operator failpoint " + faults.NeedsCommands}
	}
	if err := failpoint.Available(info); err != nil {
		return nil, &faults.SkipError{Reason: err.Error()}
	}
	return &failpointFault{spec: spec, plan: p, info: info, sleep: failpoint.SleepOf(terms)}, nil
}

// failpointTag labels the operator's answers to a failpoint fault's
// commands; a failpoint's windows never overlap, so Describe is unique.
func failpointTag(phase string, spec scenarios.Fault) string {
	return "failpoint-" + phase + " " + spec.Describe()
}

func (f *failpointFault) Spec() scenarios.Fault      { return f.spec }
func (f *failpointFault) Effect() map[string]float64 { return f.effect }

func (f *failpointFault) Start(context.Context) error {
	f.at = time.Now()
	if f.info.System == failpoint.SystemEtcd {
		return failpoint.EnableEtcd(f.spec.Name, f.spec.Term)
	}
	if f.plan.Operator == nil {
		return errors.New("driftlab-harness-bug: no operator to send the failpoint to")
	}
	return f.plan.Operator.Send(faults.Command{Cmd: faults.CmdFailpointEnable, Failpoint: f.spec.Name, Term: f.spec.Term, Tag: failpointTag("start", f.spec)})
}

func (f *failpointFault) Stop(context.Context) error {
	f.effect = map[string]float64{"window_seconds": time.Since(f.at).Seconds()}
	if f.info.System == failpoint.SystemEtcd {
		hits, err := failpoint.DisableEtcd(f.spec.Name)
		f.setHits(float64(hits))
		return err
	}
	// The operator answers with its hit count; addFailpointEffect adds it.
	return f.plan.Operator.Send(faults.Command{Cmd: faults.CmdFailpointDisable, Failpoint: f.spec.Name, Tag: failpointTag("stop", f.spec)})
}

func (f *failpointFault) setHits(hits float64) { setFailpointHits(f.effect, hits, f.sleep) }

func setFailpointHits(effect map[string]float64, hits float64, sleep time.Duration) {
	effect["hits"] = hits
	if sleep > 0 {
		effect["injected_sleep_ms"] = hits * float64(sleep.Milliseconds())
	}
}

// addFailpointEffect adds what the operator answered to an operator
// failpoint's commands: the hit count, and an error if it could not switch
// the failpoint.
func addFailpointEffect(r *report.FaultResult, spec scenarios.Fault, recs []history.Record) {
	info, ok := failpoint.Lookup(spec.Name)
	if !ok || info.System != failpoint.SystemOperator || r.Skipped != "" {
		return
	}
	start, stop := failpointTag("start", spec), failpointTag("stop", spec)
	for _, rec := range recs {
		if rec.Kind != history.KindRuntime || rec.Source != history.SourceOperator || (rec.Detail != start && rec.Detail != stop) {
			continue
		}
		if rec.Err != "" && r.Error == "" {
			r.Error = "operator: " + rec.Err
		}
		if rec.Detail == stop && rec.Err == "" {
			if r.Effect == nil {
				r.Effect = map[string]float64{}
			}
			var sleep time.Duration
			if terms, err := failpoint.ParseTerms(info, spec.Term); err == nil {
				sleep = failpoint.SleepOf(terms)
			}
			setFailpointHits(r.Effect, rec.Metrics["failpoint_hits"], sleep)
		}
	}
}
