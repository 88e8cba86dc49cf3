package mux

import (
	"net"
	"syscall"
)

// tcpNotSentLowat is Linux's TCP_NOTSENT_LOWAT socket option (include/uapi/linux/tcp.h).
const tcpNotSentLowat = 25

// limitUnsent caps the bytes a TCP connection keeps queued in the kernel but not yet sent.
// Without it the kernel send buffer (megabytes on a fast link) holds bulk frames in FIFO order
// and a small stream's frame waits behind all of them, whatever the scheduler decided; with it
// the backlog stays in the scheduler, where control frames go first and streams take turns.
func limitUnsent(conn net.Conn, bytes int) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat, bytes)
	})
}
