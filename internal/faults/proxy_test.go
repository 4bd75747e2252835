package faults

import (
	"bufio"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// echoServer answers each line with the same line, until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip writes a line on c and reads the answer within d.
func roundTrip(c net.Conn, r *bufio.Reader, d time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return "", err
	}
	return r.ReadString('\n')
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func TestProxyModes(t *testing.T) {
	t.Parallel()
	p, err := NewProxy(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	open, openR := dial(t, p.Addr())
	if got, err := roundTrip(open, openR, 5*time.Second); err != nil || got != "ping\n" {
		t.Fatalf("up: %q %v", got, err)
	}

	// Down: the open connection is reset, a new one too.
	p.Set(Down)
	if _, err := roundTrip(open, openR, 5*time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("down, open connection: %v, want a reset", err)
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second); err == nil { // the reset may come at connect
		_, err = roundTrip(c, bufio.NewReader(c), 5*time.Second)
		c.Close()
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("down, new connection: %v, want a reset", err)
		}
	}

	// Black hole: a connection is accepted and nothing comes back…
	p.Set(BlackHole)
	held, heldR := dial(t, p.Addr())
	if _, err := roundTrip(held, heldR, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("black hole: %v, want a timeout", err)
	}
	// …until it is up again: what was held goes through.
	p.Set(Up)
	_ = held.SetDeadline(time.Now().Add(5 * time.Second))
	if got, err := heldR.ReadString('\n'); err != nil || got != "ping\n" {
		t.Errorf("held connection after up: %q %v", got, err)
	}
	c, r := dial(t, p.Addr())
	if got, err := roundTrip(c, r, 5*time.Second); err != nil || got != "ping\n" {
		t.Errorf("up again: %q %v", got, err)
	}
	if n := p.Accepted(); n != 4 {
		t.Errorf("accepted %d connections, want 4", n)
	}
}
