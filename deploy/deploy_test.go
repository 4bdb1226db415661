package deploy

import (
	"os"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"
)

func TestSweepJobIsAnIndexedJobOverShards(t *testing.T) {
	b, err := os.ReadFile("sweep-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	job := &batchv1.Job{}
	if err := yaml.UnmarshalStrict(b, job); err != nil {
		t.Fatalf("sweep-job.yaml: %v", err)
	}
	if job.Spec.CompletionMode == nil || *job.Spec.CompletionMode != batchv1.IndexedCompletion {
		t.Fatal("not an Indexed Job")
	}
	n := *job.Spec.Completions
	cmd := strings.Join(append(job.Spec.Template.Spec.Containers[0].Command, job.Spec.Template.Spec.Containers[0].Args...), " ")
	if !strings.Contains(cmd, `--shard "${JOB_COMPLETION_INDEX}/8"`) || n != 8 {
		t.Fatalf("shards (%s) do not match completions (%d)", cmd, n)
	}
}
