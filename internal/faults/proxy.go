package faults

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is what a Proxy does with the bytes and connections passing through.
type Mode int

const (
	// Up forwards everything.
	Up Mode = iota
	// Down resets every connection, open or new: the dependency is gone
	// (its process died, or it restarts).
	Down
	// BlackHole accepts connections and moves no bytes, in either
	// direction, on new or open ones: the dependency's host stopped
	// answering. Only a timeout of the proxy's client ends a request then.
	BlackHole
)

func (m Mode) String() string {
	switch m {
	case Up:
		return "up"
	case Down:
		return "down"
	case BlackHole:
		return "black hole"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// dialTimeout bounds the proxy's own connection to its target.
const dialTimeout = 5 * time.Second

// Proxy is a TCP proxy on a loopback port in front of one target address.
// A test points the server at Addr instead of the target, then calls Set to
// cut or black-hole the connection and to restore it, without touching the
// target (which other tests share). It is safe for concurrent use; the
// caller must Close it.
type Proxy struct {
	target string
	ln     net.Listener

	mu     sync.Mutex
	cond   *sync.Cond // signalled when mode changes or the proxy closes
	mode   Mode
	closed bool
	conns  map[net.Conn]struct{} // both ends of every proxied connection

	accepted atomic.Int64
	wg       sync.WaitGroup
}

// NewProxy listens on a free 127.0.0.1 port and forwards to target
// (host:port), starting Up.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faults: proxy listen: %w", err)
	}
	p := &Proxy{target: target, ln: ln, conns: make(map[net.Conn]struct{})}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the host:port the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Accepted counts the connections the proxy has accepted.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// Mode returns the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Set switches the proxy to m. Down resets every open connection at once;
// BlackHole freezes them where they are; Up lets frozen ones move again and
// new ones through.
func (p *Proxy) Set(m Mode) {
	p.mu.Lock()
	p.mode = m
	var reset []net.Conn
	if m == Down {
		for c := range p.conns {
			reset = append(reset, c)
		}
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	for _, c := range reset {
		resetConn(c)
	}
}

// Close stops listening, resets every connection and waits for the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	var reset []net.Conn
	for c := range p.conns {
		reset = append(reset, c)
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	err := p.ln.Close()
	for _, c := range reset {
		resetConn(c)
	}
	p.wg.Wait()
	return err
}

// resetConn closes c with a TCP reset (no lingering FIN handshake): the
// peer sees "connection reset by peer", as when a process dies.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a transient accept error (EMFILE): keep serving
		}
		p.accepted.Add(1)
		p.wg.Add(1)
		go p.serve(c)
	}
}

// track registers c so that Down and Close reach it; false (and c reset)
// when the proxy is down or closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	ok := !p.closed && p.mode != Down
	if ok {
		p.conns[c] = struct{}{}
	}
	p.mu.Unlock()
	if !ok {
		resetConn(c)
	}
	return ok
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

// pass blocks while the proxy is a black hole and reports whether bytes may
// move (false when it is down or closed).
func (p *Proxy) pass() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.mode == BlackHole && !p.closed {
		p.cond.Wait()
	}
	return p.mode == Up && !p.closed
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	if !p.track(client) {
		return
	}
	defer p.untrack(client)
	if !p.pass() {
		resetConn(client)
		return
	}
	server, err := net.DialTimeout("tcp", p.target, dialTimeout)
	if err != nil {
		resetConn(client)
		return
	}
	if !p.track(server) {
		resetConn(client)
		return
	}
	defer p.untrack(server)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.pipe(server, client)
	}()
	p.pipe(client, server)
	<-done
}

// pipe copies src to dst until either fails, waiting at each chunk while
// the proxy is a black hole. When it ends it closes both, which ends the
// other direction too.
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.pass() {
				break
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			if err != io.EOF {
				resetConn(dst)
			}
			break
		}
	}
	_ = dst.Close()
	_ = src.Close()
}
