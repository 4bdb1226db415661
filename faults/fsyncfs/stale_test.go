package fsyncfs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary serve a mount instead of running tests: the
// value is "<backing>\n<mountpoint>".
const childEnv = "FSYNCFS_TEST_SERVE_CHILD"

func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		serveChild(v)
		return
	}
	os.Exit(m.Run())
}

// serveChild mounts, says "ready" and serves until killed. In mode "crash"
// it then fsyncs a file on its own mount with a 1 h delay and panics while
// that fsync is in flight: the hazard the package documentation describes.
func serveChild(v string) {
	parts := strings.Split(v, "\n")
	backing, mnt := parts[0], parts[1]
	m, err := MountDir(backing, mnt, 0)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if len(parts) > 2 && parts[2] == "crash" {
		f, err := os.Create(filepath.Join(mnt, "f"))
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		m.SetDelay(Delay{Base: time.Hour})
		go f.Sync()
		for m.Stats().Fsyncs == 0 {
			time.Sleep(time.Millisecond)
		}
		fmt.Println("ready")
		panic("crash with an fsync in flight on our own mount")
	}
	fmt.Println("ready")
	select {}
}

// TestCleanStaleCrashed: a process serving a mount is killed (as by a crash),
// leaving a dead mount (ENOTCONN); CleanStale removes it.
func TestCleanStaleCrashed(t *testing.T) {
	requireFUSE(t)
	root := t.TempDir()
	backing, mnt := filepath.Join(root, "b"), filepath.Join(root, "m")
	os.Mkdir(backing, 0o755)
	os.Mkdir(mnt, 0o755)
	t.Cleanup(func() { CleanStale(mnt) }) // in case an assertion below fails

	cmd := startChild(t, backing, mnt, "serve")
	cmd.Process.Kill()
	cmd.Wait()

	if on, err := IsMounted(mnt); !on || err != nil {
		t.Fatalf("IsMounted after the server died = %v, %v; want a stale mount", on, err)
	}
	_, err := os.Stat(filepath.Join(mnt, "x"))
	if !errors.Is(err, syscall.ENOTCONN) {
		t.Logf("stat on the dead mount: %v (expected ENOTCONN)", err)
	}
	ok, err := CleanStale(mnt)
	if !ok || err != nil {
		t.Fatalf("CleanStale = %v, %v; want true, nil", ok, err)
	}
	if on, _ := IsMounted(mnt); on {
		t.Fatal("still mounted after CleanStale")
	}
	if ents, err := os.ReadDir(mnt); err != nil || len(ents) != 0 {
		t.Errorf("mountpoint after CleanStale: %v, %v; want an empty dir", ents, err)
	}
}

// startChild re-executes the test binary as a mount server and waits for it
// to say "ready".
func startChild(t *testing.T, backing, mnt, mode string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+backing+"\n"+mnt+"\n"+mode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Scan()
		ready <- sc.Text()
		for sc.Scan() {
		}
	}()
	select {
	case line := <-ready:
		if line != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child: %q", line)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("child did not mount within 10s")
	}
	return cmd
}

// TestCrashWedgeFreedByCleanStale shows the hazard and the cure: a process
// that dies (here a panic) while one of its own requests is in flight on the
// mount it serves cannot finish exiting, even with SIGKILL, until the FUSE
// connection is aborted; CleanStale does that.
func TestCrashWedgeFreedByCleanStale(t *testing.T) {
	requireFUSE(t)
	root := t.TempDir()
	backing, mnt := filepath.Join(root, "b"), filepath.Join(root, "m")
	os.Mkdir(backing, 0o755)
	os.Mkdir(mnt, 0o755)
	t.Cleanup(func() { CleanStale(mnt) })

	cmd := startChild(t, backing, mnt, "crash")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		t.Logf("child exited by itself (%v): no wedge on this kernel", err)
	case <-time.After(time.Second):
		cmd.Process.Kill()
		select {
		case err := <-exited:
			t.Logf("child exited on SIGKILL (%v): no wedge on this kernel", err)
		case <-time.After(500 * time.Millisecond):
			t.Logf("child wedged: still not reaped 1.5 s after its panic, SIGKILL did nothing (as documented)")
		}
	}
	t0 := time.Now()
	if _, err := CleanStale(mnt); err != nil {
		t.Errorf("CleanStale: %v", err)
	}
	select {
	case <-exited:
		t.Logf("child gone %v after CleanStale", time.Since(t0))
	case <-time.After(5 * time.Second):
		t.Fatal("child still not reaped 5 s after CleanStale aborted the connection")
	}
	if on, _ := IsMounted(mnt); on {
		t.Error("still mounted after CleanStale")
	}
}

func TestParseMountinfoLine(t *testing.T) {
	e, ok := parseMountinfoLine(`1203 29 0:412 / /tmp/a\040b/mnt rw,nosuid,nodev,relatime shared:600 - fuse.fsyncfs /tmp/backing rw,user_id=0,group_id=0`)
	if !ok || e.major != 0 || e.minor != 412 || e.mountpoint != "/tmp/a b/mnt" || e.fstype != "fuse.fsyncfs" || !e.isFuse() || e.connID() != 412 {
		t.Errorf("parsed %+v, %v", e, ok)
	}
	e, ok = parseMountinfoLine(`36 35 98:1 / /mnt2 rw - ext3 /dev/root rw`)
	if !ok || e.isFuse() || e.connID() != 98<<20|1 {
		t.Errorf("parsed %+v, %v", e, ok)
	}
	if _, ok := parseMountinfoLine("garbage"); ok {
		t.Error("parsed garbage")
	}
}
