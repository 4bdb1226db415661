package harness

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/driftlab/driftlab/sim/history"
)

// progress prints a status line a second while a run goes on.
type progress struct {
	w     io.Writer
	mu    sync.Mutex
	name  string
	t0    time.Time
	done  chan struct{}
	once  sync.Once
	ticks sync.WaitGroup
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, t0: time.Now(), done: make(chan struct{})}
}

func (p *progress) printf(format string, args ...any) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "[%6.1fs] %s\n", time.Since(p.t0).Seconds(), fmt.Sprintf(format, args...))
}

func (p *progress) phase(name string) {
	p.mu.Lock()
	p.name = name
	p.mu.Unlock()
	p.printf("%s", name)
}

// watch starts the once-a-second line with the run's counters.
func (p *progress) watch(rec *history.Recorder, totalOps int, start time.Time) {
	if p.w == nil {
		return
	}
	p.ticks.Add(1)
	go func() {
		defer p.ticks.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.mu.Lock()
				name := p.name
				p.mu.Unlock()
				p.printf("%s: ops %d/%d, pods ready %d, truth changes %d, reported changes %d",
					name, rec.Count(history.KindOp), totalOps, rec.Count(history.KindPodReady),
					rec.Count(history.KindTruth), rec.Count(history.KindReported))
			}
		}
	}()
}

func (p *progress) stop() {
	p.once.Do(func() { close(p.done) })
	p.ticks.Wait()
}
