package virtual

import "testing"

// RunSafe turns a panic inside a run into that run's error; Run lets it
// through.
func TestRunSafeRecovers(t *testing.T) {
	res, err := RunSafe(nil, Options{}) // a nil scenario panics inside Run
	if err == nil || res != nil {
		t.Fatalf("RunSafe(nil) = %v, %v; want nil and an error", res, err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Run(nil) did not panic")
		}
	}()
	_, _ = Run(nil, Options{})
}
