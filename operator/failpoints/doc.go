// Package failpoints holds the reference operator's pingcap/failpoint markers:
// one function per place where timing matters (before a status write, inside a
// cache update, in the event handler, before a requeue). The controller and
// the state cache call these functions; in a normal build each is an empty
// marker that the compiler inlines away. `make failpoints-enable` rewrites
// this package with failpoint-ctl so that a term set through
// failpoint.Enable or GO_FAILPOINTS (for example "sleep(200)") runs at the
// marker. Full failpoint names are Path + "/" + name.
package failpoints
