package operator

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/driftlab/driftlab/faults"
	"github.com/driftlab/driftlab/faults/gcpressure"
	"github.com/driftlab/driftlab/operator/failpoints"
	"github.com/driftlab/driftlab/sim/history"
)

// Command is a harness command (faults.Command); the operator reads them
// on its standard input with --commands.
type Command = faults.Command

// Command names (faults').
const (
	CmdGCPressureStart  = faults.CmdGCPressureStart
	CmdGCPressureStop   = faults.CmdGCPressureStop
	CmdRuntimeSample    = faults.CmdRuntimeSample
	CmdFailpointEnable  = faults.CmdFailpointEnable
	CmdFailpointDisable = faults.CmdFailpointDisable
)

// commander executes commands until r ends or ctx is done.
type commander struct {
	ev       history.Sink
	mu       sync.Mutex
	pressure *gcpressure.Pressure
	last     gcpressure.Sample
}

func serveCommands(ctx context.Context, r io.Reader, ev history.Sink) {
	c := &commander{ev: ev, last: gcpressure.Read()}
	defer c.stopPressure()
	sc := bufio.NewScanner(r)
	lines := make(chan []byte)
	go func() {
		defer close(lines)
		for sc.Scan() {
			lines <- append([]byte(nil), sc.Bytes()...)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case line, ok := <-lines:
			if !ok {
				return
			}
			var cmd Command
			if err := json.Unmarshal(line, &cmd); err != nil {
				ev.Emit(history.Record{Source: history.SourceOperator, Kind: history.KindRuntime, Err: fmt.Sprintf("bad command %q: %v", line, err)})
				continue
			}
			c.do(cmd)
		}
	}
}

func (c *commander) do(cmd Command) {
	switch cmd.Cmd {
	case CmdGCPressureStart:
		c.stopPressure()
		c.mu.Lock()
		c.pressure = gcpressure.Start(gcpressure.Config{Entries: cmd.Entries, Rate: cmd.Rate})
		c.mu.Unlock()
	case CmdGCPressureStop:
		c.stopPressure()
	case CmdRuntimeSample:
		now := gcpressure.Read()
		d := gcpressure.Sub(c.last, now)
		c.last = now
		c.ev.Emit(history.Record{Source: history.SourceOperator, Kind: history.KindRuntime, Detail: cmd.Tag, Metrics: map[string]float64{
			"window_seconds":            d.Seconds,
			"gc_assist_cpu_seconds":     d.AssistCPU,
			"gc_total_cpu_seconds":      d.GCCPU,
			"gc_cycles":                 float64(d.GCCycles),
			"sched_latency_p50_seconds": d.SchedP50,
			"sched_latency_p99_seconds": d.SchedP99,
			"sched_latency_max_seconds": d.SchedMax,
			"sched_slow_events":         float64(d.SchedSlow),
			"heap_bytes":                float64(now.HeapBytes),
		}})
	case CmdFailpointEnable, CmdFailpointDisable:
		var hits int64
		var err error
		if cmd.Cmd == CmdFailpointEnable {
			err = failpoints.Enable(cmd.Failpoint, cmd.Term)
		} else {
			hits, err = failpoints.Disable(cmd.Failpoint)
		}
		r := history.Record{Source: history.SourceOperator, Kind: history.KindRuntime, Detail: cmd.Tag, Metrics: map[string]float64{"failpoint_hits": float64(hits)}}
		if err != nil {
			r.Err = err.Error()
		}
		c.ev.Emit(r)
	default:
		c.ev.Emit(history.Record{Source: history.SourceOperator, Kind: history.KindRuntime, Err: fmt.Sprintf("unknown command %q", cmd.Cmd)})
	}
}

func (c *commander) stopPressure() {
	c.mu.Lock()
	p := c.pressure
	c.pressure = nil
	c.mu.Unlock()
	if p != nil {
		p.Stop()
	}
}
