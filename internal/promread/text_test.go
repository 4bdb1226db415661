package promread

import (
	"strings"
	"testing"
)

func TestParseText(t *testing.T) {
	in := `# HELP apiserver_terminated_watchers_total Counter of watchers closed due to unresponsiveness broken by resource type.
# TYPE apiserver_terminated_watchers_total counter
apiserver_terminated_watchers_total{group="",resource="pods"} 3
apiserver_terminated_watchers_total{group="kv.driftlab.io",resource="kvclusters"} 1
apiserver_watch_cache_resource_version{group="",resource="pods"} 1234
apiserver_longrunning_requests{component="apiserver",group="",resource="pods",scope="cluster",subresource="",verb="WATCH",version="v1"} 2
weird{label="a \"quoted\", comma"} 5 1700000000000
other_metric 9
broken{x="y" 1
`
	got, err := ParseText(strings.NewReader(in), func(n string) bool { return n != "other_metric" })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("%d samples: %+v", len(got), got)
	}
	if got[1].Labels["group"] != "kv.driftlab.io" || got[1].Value != 1 {
		t.Errorf("%+v", got[1])
	}
	if got[3].Labels["verb"] != "WATCH" || got[3].Value != 2 {
		t.Errorf("%+v", got[3])
	}
	if got[4].Labels["label"] != `a "quoted", comma` || got[4].Value != 5 {
		t.Errorf("%+v", got[4])
	}
}
