package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"
)

// delayProxy forwards TCP connections to a target, holding every chunk of
// bytes for oneWay in each direction before passing it on, in order: a
// database reached over a network with a round trip of 2×oneWay, as when
// the coordinators run on other machines than the database. Bandwidth is
// not limited, and the proxy's CPU is the load generator's.
type delayProxy struct {
	ln     net.Listener
	target string
	oneWay time.Duration
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

func startDelayProxy(target string, oneWay time.Duration) (*delayProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &delayProxy{ln: ln, target: target, oneWay: oneWay, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.serve)
	return p, nil
}

// Addr is the proxy's host:port.
func (p *delayProxy) Addr() string { return p.ln.Addr().String() }

// Close stops accepting, closes every connection and waits for the
// forwarding goroutines.
func (p *delayProxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *delayProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
}

func (p *delayProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.handle(c) })
	}
}

func (p *delayProxy) handle(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.track(client)
	p.track(server)
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			client.Close()
			server.Close()
			p.mu.Lock()
			delete(p.conns, client)
			delete(p.conns, server)
			p.mu.Unlock()
		})
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.forward(server, client); closeBoth() })
	wg.Go(func() { p.forward(client, server); closeBoth() })
	wg.Wait()
}

// forward copies src to dst, each chunk oneWay after it was read.
func (p *delayProxy) forward(dst, src net.Conn) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	ch := make(chan chunk, 256)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 64<<10)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{buf[:n], time.Now().Add(p.oneWay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		if d := time.Until(c.at); d > 0 {
			time.Sleep(d)
		}
		if _, err := dst.Write(c.b); err != nil {
			// Drain so the reader is not blocked on a full channel.
			for range ch {
			}
			return
		}
	}
}

// proxied parses store (a postgres:// URL) and returns its host:port (port
// 5432 unless given) and the URL to reach it through a proxy at addr
// instead.
func proxied(store string) (target string, via func(addr string) string, err error) {
	u, err := url.Parse(store)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, errors.New("--db-latency needs --store as a postgres:// URL")
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return "", nil, fmt.Errorf("--store %q names no host", u.Redacted())
	}
	if port == "" {
		port = "5432"
	}
	return net.JoinHostPort(host, port), func(addr string) string {
		v := *u
		v.Host = addr
		return v.String()
	}, nil
}
