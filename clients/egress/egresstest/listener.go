package egresstest

import (
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
)

// Listener is a TCP listener on 127.0.0.1 that counts the connections it
// accepts and closes each at once: the witness that a refused dial never
// connected.
type Listener struct {
	l        net.Listener
	accepted atomic.Int64
	probes   atomic.Int64
}

// Listen starts a Listener; it stops when the test ends.
func Listen(t testing.TB) *Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	c := &Listener{l: l}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			c.accepted.Add(1)
			conn.Close()
		}
	}()
	return c
}

// Addr is the listener's address, 127.0.0.1:port.
func (c *Listener) Addr() string { return c.l.Addr().String() }

// Port is the listener's port.
func (c *Listener) Port() int { return c.l.Addr().(*net.TCPAddr).Port }

// PortString is the listener's port as a string.
func (c *Listener) PortString() string { return strconv.Itoa(c.Port()) }

// Accepted is how many connections were made to the listener so far. It
// does not guess at timing: it connects itself and waits until that
// probe has been accepted and closed, so every connection made before the
// call has been accepted (and counted) too; probes are not counted.
func (c *Listener) Accepted(t testing.TB) int64 {
	t.Helper()
	conn, err := net.Dial("tcp", c.Addr())
	if err != nil {
		t.Fatalf("egresstest: probe the listener: %v", err)
	}
	defer conn.Close()
	c.probes.Add(1)
	_, _ = io.Copy(io.Discard, conn) // until the listener closes it
	return c.accepted.Load() - c.probes.Load()
}
