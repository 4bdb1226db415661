//go:build !linux

package netproxy

import "syscall"

// control is a no-op where driftlab does not set socket options.
func (o Options) control(_, _ string, _ syscall.RawConn) error { return nil }
