package failpoint

import (
	"errors"
	"fmt"
	"sort"

	gofail "go.etcd.io/gofail/runtime"

	"github.com/driftlab/driftlab/operator/failpoints"
)

// Reasons a failpoint cannot run in this build, as reported in summaries.
const (
	ReasonNoEtcdFailpoints  = "this driftlab was built without etcd gofail failpoints; run make test-failpoints, or build with GOWORK=$(scripts/failpoints.sh etcd) (make etcd-failpoints)"
	ReasonNoOperatorRewrite = "this driftlab was built without its own failpoints rewritten by failpoint-ctl; run make test-failpoints, or make failpoints-enable, build, then make failpoints-disable"
)

// EtcdFailpoints returns the gofail failpoints compiled into this binary,
// sorted; empty in a normal build.
func EtcdFailpoints() []string {
	l := gofail.List()
	sort.Strings(l)
	return l
}

// Available returns nil when the failpoint fp can be switched in this
// binary, or an error saying why not and how to get a build that can.
func Available(fp Info) error {
	switch fp.System {
	case SystemEtcd:
		if len(gofail.List()) == 0 {
			return errors.New(ReasonNoEtcdFailpoints)
		}
		if _, _, err := gofail.Status(fp.Name); errors.Is(err, gofail.ErrNoExist) {
			return fmt.Errorf("etcd failpoint %s is not compiled into this build (it has %d others)", fp.Name, len(gofail.List()))
		}
		return nil
	case SystemOperator:
		if !failpoints.Rewritten() {
			return errors.New(ReasonNoOperatorRewrite)
		}
		return nil
	}
	return fmt.Errorf("failpoint %s: unknown system %q", fp.Name, fp.System)
}

// EnableEtcd switches etcd's failpoint name on with term, in this process
// (where the embedded etcd runs).
func EnableEtcd(name, term string) error {
	if err := gofail.Enable(name, term); err != nil {
		return fmt.Errorf("enabling etcd failpoint %s=%s: %w", name, term, err)
	}
	return nil
}

// DisableEtcd switches etcd's failpoint name off and returns how often its
// term fired since it was enabled.
func DisableEtcd(name string) (int, error) {
	_, n, err := gofail.Status(name)
	if err != nil && !errors.Is(err, gofail.ErrDisabled) {
		return 0, fmt.Errorf("etcd failpoint %s: %w", name, err)
	}
	if err := gofail.Disable(name); err != nil && !errors.Is(err, gofail.ErrDisabled) {
		return n, fmt.Errorf("disabling etcd failpoint %s: %w", name, err)
	}
	return n, nil
}
