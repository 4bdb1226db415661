package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/report"
)

// Bundle is a verified bundle.
type Bundle struct {
	// Dir is the bundle's directory.
	Dir string
	// Manifest is manifest.json.
	Manifest Manifest
}

// VerifyError is a bundle whose content does not match its manifest.
type VerifyError struct {
	Dir  string
	File string // path inside the bundle
	Msg  string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("bundle %s: %s: %s", e.Dir, e.File, e.Msg)
}

// Open reads a bundle's manifest and verifies every listed file's size and
// SHA-256. A missing, truncated or modified file is a *VerifyError naming
// it. An incomplete bundle (the run never finished) opens: its manifest
// lists only the files known at its start, and Manifest.Status says so.
func Open(dir string) (*Bundle, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("bundle %s: not a directory (a bundle is a run directory with %s)", dir, ManifestFile)
	}
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &VerifyError{dir, ManifestFile, "missing: not a driftlab bundle, or written by a version without bundles"}
	}
	if err != nil {
		return nil, err
	}
	bd := &Bundle{Dir: dir}
	if err := json.Unmarshal(b, &bd.Manifest); err != nil {
		return nil, &VerifyError{dir, ManifestFile, "not valid JSON (" + err.Error() + "): the manifest was damaged"}
	}
	m := &bd.Manifest
	if m.Format != FormatVersion {
		return nil, &VerifyError{dir, ManifestFile, fmt.Sprintf("format %d, this driftlab reads format %d", m.Format, FormatVersion)}
	}
	switch m.Status {
	case StatusIncomplete, StatusComplete, StatusFailed, StatusInterrupted:
	default:
		return nil, &VerifyError{dir, ManifestFile, fmt.Sprintf("unknown status %q", m.Status)}
	}
	if len(m.Files) == 0 {
		return nil, &VerifyError{dir, ManifestFile, "lists no files"}
	}
	for _, f := range m.Files {
		if filepath.IsAbs(f.Path) || !filepath.IsLocal(filepath.FromSlash(f.Path)) {
			return nil, &VerifyError{dir, ManifestFile, fmt.Sprintf("lists a path outside the bundle: %q", f.Path)}
		}
		got, err := checksum(dir, f.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, &VerifyError{dir, f.Path, "missing (the manifest lists it)"}
		case err != nil:
			return nil, &VerifyError{dir, f.Path, err.Error()}
		case got.Size < f.Size:
			return nil, &VerifyError{dir, f.Path, fmt.Sprintf("truncated: %d bytes, the manifest says %d", got.Size, f.Size)}
		case got.Size != f.Size:
			return nil, &VerifyError{dir, f.Path, fmt.Sprintf("modified: %d bytes, the manifest says %d", got.Size, f.Size)}
		case got.SHA256 != f.SHA256:
			return nil, &VerifyError{dir, f.Path, fmt.Sprintf("modified: SHA-256 %s, the manifest says %s", got.SHA256, f.SHA256)}
		}
	}
	return bd, nil
}

// Path returns the path of a file of the bundle.
func (b *Bundle) Path(name string) string { return filepath.Join(b.Dir, name) }

// Has reports whether the manifest lists a file.
func (b *Bundle) Has(name string) bool {
	for _, f := range b.Manifest.Files {
		if f.Path == name {
			return true
		}
	}
	return false
}

// Scenario loads the bundle's resolved scenario.
func (b *Bundle) Scenario() (*scenarios.Scenario, error) {
	return scenarios.Load(b.Path(ScenarioFile))
}

// Summary reads the recorded summary; an error when the run left none.
func (b *Bundle) Summary() (*report.Summary, error) {
	if !b.Has(SummaryFile) {
		return nil, fmt.Errorf("bundle %s: no %s (status %s)", b.Dir, SummaryFile, b.Manifest.Status)
	}
	return report.ReadSummary(b.Path(SummaryFile))
}

// History reads the recorded history.
func (b *Bundle) History() ([]history.Record, error) {
	return readHistory(b.Path(HistoryFile))
}

// Faults reads faults.json, the executed fault schedule.
func (b *Bundle) Faults() ([]ExecutedFault, error) {
	var out []ExecutedFault
	data, err := os.ReadFile(b.Path(FaultsFile))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", b.Path(FaultsFile), err)
	}
	return out, nil
}
