package tests

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/driftlab/driftlab/sim/bundle"
	"github.com/driftlab/driftlab/sim/report"
)

// TestWatchingClientDoesNotChangeTheExitCode: an independent client
// watching Pods and KVClusters through the run's kubeconfig, as the README
// invites with kubectl, keeps its watches open through the teardown of a
// faulted run (the incident scenario). kube-apiserver does not end open
// watches when it shuts down unless told to, so it used to wait out its
// 60 s request timeout, envtest killed it after 20 s and the run exited 3
// ("stopping kube-apiserver: timeout waiting for process kube-apiserver to
// stop") although every invariant had been judged. The exit code must be
// the verdict's.
func TestWatchingClientDoesNotChangeTheExitCode(t *testing.T) {
	needControlPlane(t)
	dir := runDir(t, "watched-incident")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "run", "--no-report", "--quiet", "--out", dir, "incident-watch-lag")
	cmd.Env = append(os.Environ(), "DRIFTLAB_OPERATOR_CHILD=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	// Watch as soon as the kubeconfig is there (the control plane is up).
	kubeconfig := filepath.Join(dir, "kubeconfig")
	for {
		if _, err := os.Stat(kubeconfig); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("the run ended (%v) before its control plane was up:\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	pods, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	var events atomic.Int64
	pw, err := pods.CoreV1().Pods("").Watch(wctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Stop()
	// The kubeconfig is written before the CRDs are installed: retry until
	// KVClusters are served.
	kvclusters := dyn.Resource(schema.GroupVersionResource{Group: "kv.driftlab.io", Version: "v1alpha1", Resource: "kvclusters"}).Namespace("")
	kw, err := kvclusters.Watch(wctx, metav1.ListOptions{})
	for ; err != nil; kw, err = kvclusters.Watch(wctx, metav1.ListOptions{}) {
		select {
		case err := <-exited:
			t.Fatalf("the run ended (%v) before KVClusters were served:\n%s", err, out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	defer kw.Stop()
	drain(pw.ResultChan(), &events)
	drain(kw.ResultChan(), &events)

	err = <-exited
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	sum, serr := report.ReadSummary(filepath.Join(dir, bundle.SummaryFile))
	if serr != nil {
		t.Fatalf("%v\n%s", serr, out.String())
	}
	want := 1
	if sum.Passed {
		want = 0
	}
	if code != want || strings.Contains(out.String(), "stopping kube-apiserver") {
		t.Fatalf("exit %d with a watcher connected, want %d (the verdict's; summary error %q):\n%s", code, want, sum.Error, out.String())
	}
	if events.Load() == 0 {
		t.Fatal("the watcher saw no event: it was not watching the run")
	}
}

// drain counts the events of a watch until it ends.
func drain[E any](ch <-chan E, n *atomic.Int64) {
	go func() {
		for range ch {
			n.Add(1)
		}
	}()
}
