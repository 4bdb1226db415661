package local

import (
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/driftlab/driftlab/sim/auditimport"
)

// auditFiles writes the audit policy of gr's requests into the run
// directory and returns its path and the audit log's absolute path.
func auditFiles(dir, log string, gr schema.GroupResource) (policy, path string, err error) {
	policy, err = filepath.Abs(filepath.Join(dir, "audit-policy.yaml"))
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(policy, []byte(auditimport.Policy(gr)), 0o644); err != nil {
		return "", "", err
	}
	if !filepath.IsAbs(log) {
		log = filepath.Join(dir, log)
	}
	path, err = filepath.Abs(log)
	return policy, path, err
}
