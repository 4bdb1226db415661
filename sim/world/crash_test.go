package world_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/driftlab/driftlab/sim/world"
)

// childEnv makes the test binary a harness that starts a world and waits
// to be killed (TestHarnessKilled).
const childEnv = "DRIFTLAB_WORLD_CHILD"

// childMain starts a world against the apiserver named by the child
// variables, prints the components' PIDs and blocks.
func childMain() {
	kc := os.Getenv("WORLD_KUBECONFIG")
	admin, err := clientcmd.BuildConfigFromFlags("", kc)
	if err == nil {
		var w *world.World
		w, err = world.Start(context.Background(), world.Config{
			Dir: os.Getenv("WORLD_DIR"), Admin: admin, Kubeconfig: kc,
			ServiceAccountKeyFile: os.Getenv("WORLD_SA_KEY"), Nodes: 1, NodePrefix: "orphan-",
		})
		if err == nil {
			fmt.Println("pids", strings.Trim(fmt.Sprint(w.PIDs()), "[]"))
			select {}
		}
	}
	fmt.Println("error", err)
	os.Exit(1)
}

// TestHarnessKilled: when the process that started a world is killed
// (SIGKILL, no Stop), its controller-manager and scheduler die with it.
func TestHarnessKilled(t *testing.T) {
	needPlane(t)
	dir := t.TempDir()
	env := plane(t, dir)
	childDir := filepath.Join(dir, "child")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "WORLD_KUBECONFIG="+env.Kubeconfig, "WORLD_DIR="+childDir,
		"WORLD_SA_KEY="+filepath.Join(env.APIServer.CertDir, "sa-signer.key"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "pids ") {
		t.Fatalf("child: %q, %v", line, err)
	}
	var pids []int
	for _, f := range strings.Fields(strings.TrimPrefix(line, "pids ")) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	if len(pids) != 2 {
		t.Fatalf("child started %v, want a controller-manager and a scheduler", pids)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	// The components were the child's children: once it is gone they are
	// re-parented, get SIGKILL (Pdeathsig) and are reaped by init.
	eventually(t, 10*time.Second, "the components gone", func() (bool, string) {
		var alive []int
		for _, pid := range pids {
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				if st, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat")); !strings.Contains(string(st), ") Z ") {
					alive = append(alive, pid)
				}
			}
		}
		return len(alive) == 0, fmt.Sprintf("alive: %v", alive)
	})
	noProcessLeft(t, nil, childDir)
}
