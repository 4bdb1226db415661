package htmlreport

import "testing"

// BenchmarkWrite measures report.html for a 20 s virtual baseline run
// (29 samples, 122 operations, about 1,200 history records).
func BenchmarkWrite(b *testing.B) {
	dir := virtualBundle(b, "baseline")
	for b.Loop() {
		if _, err := Write(dir, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
