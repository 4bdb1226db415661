package bundle

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	etcdversion "go.etcd.io/etcd/api/v3/version"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/report"
)

// File names inside a bundle.
const (
	ManifestFile   = "manifest.json"
	ScenarioFile   = "scenario.yaml"
	HistoryFile    = "history.jsonl"
	SummaryFile    = "summary.json"
	FaultsFile     = "faults.json"
	MetricsFile    = "metrics.jsonl"
	OpsFile        = "ops.jsonl"
	ReportFile     = "report.html"
	ScreenshotFile = "report.png"
)

// Statuses of a bundle.
const (
	// StatusIncomplete: the run started and has not finished (or the process
	// died before it could say how it ended).
	StatusIncomplete = "incomplete"
	// StatusComplete: the run finished; its invariants may still have failed
	// (see summary.json).
	StatusComplete = "complete"
	// StatusFailed: the run itself failed (not an invariant).
	StatusFailed = "failed"
	// StatusInterrupted: the run was stopped (Ctrl-C, SIGTERM).
	StatusInterrupted = "interrupted"
)

// FormatVersion is the bundle format this package writes and reads.
const FormatVersion = 1

// derived lists files regenerated from the others (driftlab report): they
// are not checksummed, so regenerating them keeps the bundle valid.
var derived = map[string]bool{ManifestFile: true, ReportFile: true, ScreenshotFile: true}

// Versions are the versions of what produced a run.
type Versions struct {
	// Driftlab is the VCS revision of the driftlab build ("+dirty" when the
	// tree had local changes), or "(devel)" when the build has no VCS data.
	Driftlab string `json:"driftlab"`
	// Go is the Go toolchain that built driftlab.
	Go string `json:"go"`
	// Etcd is the embedded etcd's version.
	Etcd string `json:"etcd"`
	// KubeAPIServer is what `kube-apiserver --version` printed (local
	// backend), empty when no apiserver took part.
	KubeAPIServer string `json:"kube_apiserver,omitempty"`
}

// File is one checksummed file of a bundle.
type File struct {
	Path   string `json:"path"` // slash-separated, relative to the bundle
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest is manifest.json.
type Manifest struct {
	Format   int      `json:"format"`
	Status   string   `json:"status"`
	Scenario string   `json:"scenario"`
	Backend  string   `json:"backend"`
	Seed     uint64   `json:"seed"`
	Versions Versions `json:"versions"`
	// Command is the command line that made the run.
	Command []string `json:"command,omitempty"`
	// Started and Finished are wall-clock times (RFC 3339), for people.
	Started  string `json:"started"`
	Finished string `json:"finished,omitempty"`
	// Passed is the run's verdict (complete bundles only).
	Passed *bool `json:"passed,omitempty"`
	// TraceHash is the virtual backend's trace hash.
	TraceHash string `json:"trace_hash,omitempty"`
	// Error is why the run failed or was interrupted.
	Error string `json:"error,omitempty"`
	// Files are the bundle's files with their checksums; report.html and
	// report.png are derived and not listed.
	Files []File `json:"files"`
}

// CurrentVersions returns the versions of this build; apiserver, when not
// empty, is a kube-apiserver binary asked for its version.
func CurrentVersions(apiserver string) Versions {
	v := Versions{Driftlab: "(devel)", Go: runtime.Version(), Etcd: etcdversion.Version}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			v.Driftlab = rev
			if dirty {
				v.Driftlab += "+dirty"
			}
		}
	}
	if v.Driftlab == "(devel)" {
		v.Driftlab = gitRevision()
	}
	if apiserver != "" {
		v.KubeAPIServer = apiserverVersion(apiserver)
	}
	return v
}

// gitRevision is the fallback for builds without VCS data (go build
// -buildvcs=false, go run, go test): the commit of the git work tree the
// process runs in, "+dirty" with local changes, or "(devel)".
func gitRevision() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "(devel)"
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		rev += "+dirty"
	}
	return rev + " (git work tree)"
}

func apiserverVersion(path string) string {
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		return "unknown (" + path + " --version: " + err.Error() + ")"
	}
	return strings.TrimSpace(string(out))
}

// Writer writes one bundle; see Begin and Finish.
type Writer struct {
	dir     string
	m       Manifest
	history *KnownHistory
}

// KnownHistory is what a backend that wrote history.jsonl as the run went
// knows of it: its size and SHA-256 and its fault and metrics records (the
// kinds FaultOrMetrics names), all Finish needs from it. With it, Finish
// does not read the history again, which for a long soak took about 1.4 ms
// per MB: 0.5 s for a simulated day, seconds for a month, after Ctrl-C.
type KnownHistory struct {
	Size             int64
	SHA256           string
	FaultsAndMetrics []history.Record
}

// FaultOrMetrics reports whether a record kind is one Finish reads from
// the history (faults.json and metrics.jsonl are made of them).
func FaultOrMetrics(kind string) bool {
	switch kind {
	case history.KindFaultStart, history.KindFaultStop, history.KindFaultSkipped, history.KindEtcdMetrics, history.KindRuntime:
		return true
	}
	return false
}

// UseHistory tells Finish what the backend knows of history.jsonl. Finish
// uses it only while the file still has that size; otherwise it reads the
// file as without it.
func (w *Writer) UseHistory(h *KnownHistory) { w.history = h }

// Begin starts a bundle in dir (created if needed): scenario.yaml and an
// "incomplete" manifest. The backend writes its own files into dir next.
// When dir already holds a bundle (make demo reuses runs/demo), the files its
// manifest lists and its report are removed first, so nothing of the old run
// is mistaken for the new one's.
//
// A directory that exists, is not empty and holds no bundle (no
// manifest.json of this format) is refused with a *DirError, so a run never
// overwrites files that are not its own; so is a dir that cannot be made.
func Begin(dir string, s *scenarios.Scenario, backend string, v Versions, command []string) (*Writer, error) {
	if err := usableDir(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, &DirError{Dir: dir, Err: err}
	}
	if err := removeOld(dir); err != nil {
		return nil, err
	}
	y, err := scenarios.Encode(s)
	if err != nil {
		return nil, fmt.Errorf("bundle: encoding the resolved scenario: %w", err)
	}
	if err := writeAtomic(filepath.Join(dir, ScenarioFile), y); err != nil {
		return nil, err
	}
	w := &Writer{dir: dir, m: Manifest{Format: FormatVersion, Status: StatusIncomplete, Scenario: s.Name, Backend: backend,
		Seed: s.Seed, Versions: v, Command: command, Started: time.Now().UTC().Format(time.RFC3339)}}
	if f, err := checksum(dir, ScenarioFile); err == nil {
		w.m.Files = []File{f}
	} else {
		return nil, err
	}
	return w, w.writeManifest()
}

// DirError is a run directory that Begin cannot use: it cannot be made, or
// it holds files that are not a bundle's. It is the caller's input that is
// wrong, not the run.
type DirError struct {
	Dir string
	Err error
}

func (e *DirError) Error() string { return fmt.Sprintf("run directory %s: %v", e.Dir, e.Err) }
func (e *DirError) Unwrap() error { return e.Err }

// usableDir accepts a directory that does not exist yet, is empty, or holds
// a bundle (its manifest.json decodes with this format), and refuses
// anything else with a *DirError.
func usableDir(dir string) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return &DirError{Dir: dir, Err: err}
	case !st.IsDir():
		return &DirError{Dir: dir, Err: errors.New("exists and is not a directory")}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return &DirError{Dir: dir, Err: err}
	}
	if len(entries) == 0 {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	var m Manifest
	if err == nil && json.Unmarshal(data, &m) == nil && m.Format == FormatVersion && m.Status != "" {
		return nil
	}
	return &DirError{Dir: dir, Err: fmt.Errorf("is not empty and holds no driftlab bundle (no %s); refusing to write into it: pick a new or empty directory", ManifestFile)}
}

// removeOld removes a previous bundle's listed and derived files from dir.
func removeOld(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var m Manifest
	if json.Unmarshal(data, &m) != nil {
		return nil // not ours to interpret: leave it
	}
	names := []string{ReportFile, ScreenshotFile, ManifestFile}
	for _, f := range m.Files {
		if filepath.IsLocal(filepath.FromSlash(f.Path)) {
			names = append(names, filepath.FromSlash(f.Path))
		}
	}
	for _, n := range names {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Dir is the bundle's directory.
func (w *Writer) Dir() string { return w.dir }

// Finish ends the bundle: it writes faults.json and metrics.jsonl from the
// history, then the manifest with status and checksums. sum may be nil (the
// run failed before a summary); runErr is the backend's error; interrupted
// says the run was stopped by a signal.
func (w *Writer) Finish(sum *report.Summary, runErr error, interrupted bool) error {
	var errs []error
	known := w.knownHistory()
	var recs []history.Record
	if known != nil {
		recs = known.FaultsAndMetrics
	} else {
		var herr error
		recs, herr = readFaultsAndMetrics(filepath.Join(w.dir, HistoryFile))
		if herr != nil && !errors.Is(herr, fs.ErrNotExist) {
			errs = append(errs, herr)
		}
	}
	executed := ExecutedFaults(recs)
	if sum != nil { // faults skipped before the run (the local backend records them in the summary only)
		for _, f := range sum.Faults {
			if f.Skipped != "" && !hasFault(executed, f.Index) {
				executed = append(executed, ExecutedFault{Index: f.Index, Type: f.Type, Skipped: f.Skipped})
			}
		}
	}
	if err := writeJSONFile(filepath.Join(w.dir, FaultsFile), executed); err != nil {
		errs = append(errs, err)
	}
	if err := writeMetrics(filepath.Join(w.dir, MetricsFile), recs); err != nil {
		errs = append(errs, err)
	}
	switch {
	case interrupted:
		w.m.Status = StatusInterrupted
	case runErr != nil:
		w.m.Status = StatusFailed
	default:
		w.m.Status = StatusComplete
	}
	if runErr != nil {
		w.m.Error = runErr.Error()
	}
	if sum != nil {
		p := sum.Passed
		w.m.Passed = &p
		w.m.TraceHash = sum.TraceHash
	}
	w.m.Finished = time.Now().UTC().Format(time.RFC3339)
	files, err := checksumAll(w.dir, known)
	if err != nil {
		errs = append(errs, err)
	}
	w.m.Files = files
	if err := w.writeManifest(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (w *Writer) writeManifest() error {
	b, err := json.MarshalIndent(&w.m, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(w.dir, ManifestFile), append(b, '\n'))
}

// writeAtomic writes a file through a temporary file and a rename, so a
// reader (or a crash) sees the old or the new content, never half of it.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(path, append(b, '\n'))
}

func readHistory(path string) ([]history.Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := history.Read(f)
	if err != nil {
		return recs, fmt.Errorf("%s: %w", path, err)
	}
	return recs, nil
}

// readFaultsAndMetrics reads the fault and metrics records of a history
// (all that Finish needs), one line at a time, so that finishing the bundle
// of a long run does not hold its history in memory.
func readFaultsAndMetrics(path string) ([]history.Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []history.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		// Only these kinds are kept; a line without their words is none of them.
		if !bytes.Contains(b, []byte("fault-")) && !bytes.Contains(b, []byte("-metrics")) {
			continue
		}
		var rec history.Record
		if err := json.Unmarshal(b, &rec); err != nil {
			return out, fmt.Errorf("%s: history line %d: %w", path, line, err)
		}
		if FaultOrMetrics(rec.Kind) {
			out = append(out, rec)
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

func checksum(dir, rel string) (File, error) {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", rel, err)
	}
	return File{Path: rel, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// checksumAll lists every regular file under dir but the derived ones and
// temporary files, sorted by path.
// knownHistory is UseHistory's description while history.jsonl still has
// its size, else nil.
func (w *Writer) knownHistory() *KnownHistory {
	if w.history == nil {
		return nil
	}
	st, err := os.Stat(filepath.Join(w.dir, HistoryFile))
	if err != nil || !st.Mode().IsRegular() || st.Size() != w.history.Size {
		return nil
	}
	return w.history
}

// checksumAll checksums the bundle's files; history, when not nil, is
// history.jsonl's (not read again).
func checksumAll(dir string, history *KnownHistory) ([]File, error) {
	var out []File
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if derived[rel] || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		if rel == HistoryFile && history != nil {
			out = append(out, File{Path: rel, Size: history.Size, SHA256: history.SHA256})
			return nil
		}
		f, err := checksum(dir, rel)
		if err != nil {
			return err
		}
		out = append(out, f)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, err
}

// ExecutedFault is one fault as it was executed: from the history's
// fault-start, fault-stop and fault-skipped records.
type ExecutedFault struct {
	Index   int     `json:"index"`
	Type    string  `json:"type"`
	StartMs float64 `json:"start_ms,omitempty"`
	// StopMs is when it stopped; absent when it ran to the end of the run.
	StopMs *float64 `json:"stop_ms,omitempty"`
	// Detail is the fault's parameters as recorded at start.
	Detail  string `json:"detail,omitempty"`
	Skipped string `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
	// Effect is what the fault measurably did, as recorded at its stop.
	Effect map[string]float64 `json:"effect,omitempty"`
}

var leadingIndex = regexp.MustCompile(`^(\d+)(?::\s*(.*))?`)

// ExecutedFaults extracts the executed fault schedule from a history.
func ExecutedFaults(recs []history.Record) []ExecutedFault {
	out := []ExecutedFault{}
	open := map[int]int{}
	index := func(detail string) (int, string) {
		m := leadingIndex.FindStringSubmatch(detail)
		if m == nil {
			return -1, detail
		}
		var i int
		fmt.Sscanf(m[1], "%d", &i)
		return i, m[2]
	}
	for _, r := range recs {
		switch r.Kind {
		case history.KindFaultStart:
			i, rest := index(r.Detail)
			open[i] = len(out)
			out = append(out, ExecutedFault{Index: i, Type: r.Op, StartMs: report.Ms(r.T), Detail: strings.TrimSpace(rest), Error: r.Err})
		case history.KindFaultStop:
			i, _ := index(r.Detail)
			if j, ok := open[i]; ok {
				ms := report.Ms(r.T)
				out[j].StopMs = &ms
				out[j].Effect = r.Metrics
				if r.Err != "" && out[j].Error == "" {
					out[j].Error = r.Err
				}
				delete(open, i)
			}
		case history.KindFaultSkipped:
			i, rest := index(r.Detail)
			out = append(out, ExecutedFault{Index: i, Type: r.Op, Skipped: rest})
		}
	}
	return out
}

func hasFault(fs []ExecutedFault, index int) bool {
	for _, f := range fs {
		if f.Index == index {
			return true
		}
	}
	return false
}

// MetricsSample is one line of metrics.jsonl: a scrape of etcd's metrics or
// of the operator's runtime metrics.
type MetricsSample struct {
	T       time.Duration      `json:"t_ns"`
	Kind    string             `json:"kind"` // etcd-metrics or runtime-metrics
	Tag     string             `json:"tag,omitempty"`
	Metrics map[string]float64 `json:"metrics"`
}

// MetricsSamples extracts the metric scrapes from a history.
func MetricsSamples(recs []history.Record) []MetricsSample {
	var out []MetricsSample
	for _, r := range recs {
		if r.Kind == history.KindEtcdMetrics || r.Kind == history.KindRuntime {
			out = append(out, MetricsSample{T: r.T, Kind: r.Kind, Tag: r.Detail, Metrics: r.Metrics})
		}
	}
	return out
}

func writeMetrics(path string, recs []history.Record) error {
	var b strings.Builder
	for _, m := range MetricsSamples(recs) {
		line, err := json.Marshal(m)
		if err != nil {
			return err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return writeAtomic(path, []byte(b.String()))
}
