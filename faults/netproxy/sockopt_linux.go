package netproxy

import "syscall"

// control sets the socket options of o on a socket before it connects or
// listens (TCP_MAXSEG must be set then to change the MSS announced in the
// SYN; SO_RCVBUF to size the window scale).
func (o Options) control(_, _ string, c syscall.RawConn) error {
	if o.MSS <= 0 && o.ReadBuffer <= 0 {
		return nil
	}
	var serr error
	err := c.Control(func(fd uintptr) {
		if o.MSS > 0 {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, o.MSS)
		}
		if serr == nil && o.ReadBuffer > 0 {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, o.ReadBuffer)
		}
	})
	if err != nil {
		return err
	}
	return serr
}
