package vmmtest

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"vmdap/vmm/gdbremote/rsp"
	"vmdap/x86"
)

// BhyveProxy sits between a client and a QEMU GDB stub and answers only
// bhyve's packet set (usr.sbin/bhyve/gdb.c): qSupported says just
// "PacketSize=4096;swbreak+"; G, P, vCont, X, Z1-Z4, QStartNoAckMode and
// qXfer get empty ("unsupported") replies; 'g' replies are cut to GDB's
// 64bit-core block; stop replies carry swbreak for breakpoints; a Z0 at an
// address the guest does not map is refused, as bhyve translates it at
// once. It proves the gdbremote fallbacks against a real guest.
//
// NewMappedZ0Proxy makes one in another dialect.
type BhyveProxy struct {
	l        net.Listener
	upstream string
	wg       sync.WaitGroup
	bps      map[string]bool // Z0 addresses the client placed (the client's goroutine only)
	mappedZ0 bool            // NewMappedZ0Proxy's dialect
	drs      map[string]bool // Z1 addresses in place, at most 4 (mappedZ0; the client's goroutine only)

	mu      sync.Mutex  // guards tap, stubEOF, zlog, phantom and served (the upstream reader, the client's goroutine, the test)
	tap     chan string // takes the next upstream reply (the proxy's own request)
	stubEOF bool        // the stub went away
	zlog    []string    // the client's Z and z packets, in order
	phantom int         // steps still to answer at once (PhantomSteps)
	served  int         // steps answered so
}

// NewBhyveProxy listens on loopback and forwards to upstream.
func NewBhyveProxy(upstream string) (*BhyveProxy, error) { return newProxy(upstream, false) }

// NewMappedZ0Proxy is a proxy whose stub takes software breakpoints only
// at mapped addresses and has debug registers, as QEMU's under KVM (Z0
// writes an int3) or a hardware probe's: a Z0 at an address the guest
// does not map is refused, as by BhyveProxy; Z1 passes through, four at
// most (DR0-DR3: a fifth is refused with ENOSPC, as by QEMU-KVM); so does
// the rest of QEMU's dialect, but for QStartNoAckMode (the proxy acks on
// its own) and qqemu.* (which would let the client pipeline requests, and
// the proxy asks QEMU in between).
func NewMappedZ0Proxy(upstream string) (*BhyveProxy, error) { return newProxy(upstream, true) }

func newProxy(upstream string, mappedZ0 bool) (*BhyveProxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &BhyveProxy{l: l, upstream: upstream, bps: map[string]bool{}, mappedZ0: mappedZ0, drs: map[string]bool{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Breakpoints returns the breakpoint packets (Z and z) the client sent,
// in order; one the proxy refused ends in " refused".
func (p *BhyveProxy) Breakpoints() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.zlog...)
}

// logZ records a breakpoint packet of the client's.
func (p *BhyveProxy) logZ(req, note string) {
	if len(req) < 2 || (req[0] != 'Z' && req[0] != 'z') {
		return
	}
	p.mu.Lock()
	p.zlog = append(p.zlog, req+note)
	p.mu.Unlock()
}

// PhantomSteps makes the proxy (NewMappedZ0Proxy's dialect) answer the
// next n single steps itself, at once, with a stop on the stepped thread
// and nothing executed, as QEMU TCG now and then does under load. It
// returns how many it has answered so far.
func (p *BhyveProxy) PhantomSteps(n int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phantom += n
	return p.served
}

// phantomStep answers a step itself while PhantomSteps asks for it.
func (p *BhyveProxy) phantomStep(req string) (string, bool) {
	thread, ok := strings.CutPrefix(req, "vCont;s:")
	if !ok {
		return "", false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.phantom == 0 {
		return "", false
	}
	p.phantom--
	p.served++
	return "T05thread:" + thread + ";", true
}

// Addr is where clients connect.
func (p *BhyveProxy) Addr() string { return p.l.Addr().String() }

// Close stops the proxy.
func (p *BhyveProxy) Close() {
	p.l.Close()
	p.wg.Wait()
}

func (p *BhyveProxy) serve() {
	defer p.wg.Done()
	c, err := p.l.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	var up net.Conn
	for deadline := time.Now().Add(15 * time.Second); ; {
		if up, err = net.Dial("tcp", p.upstream); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // QEMU is starting; polling its socket
	}
	if err != nil {
		return
	}
	defer up.Close()
	cr, ur := bufio.NewReader(c), bufio.NewReader(up)
	replies := make(chan string, 16)
	go func() { // upstream → client, filtered
		defer close(replies)
		for {
			pkt, err := readPacket(ur, up)
			if err != nil {
				return
			}
			replies <- pkt
		}
	}()
	// client requests are handled one at a time; asynchronous stop
	// replies (after c/s) are forwarded as they come.
	var mu sync.Mutex // orders frames to the client (replies and asynchronous stops)
	send := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		c.Write(rsp.Frame([]byte(s)))
	}
	lastReq := make(chan string, 1)
	go func() {
		for r := range replies {
			p.mu.Lock()
			tap := p.tap
			p.tap = nil
			p.mu.Unlock()
			if tap != nil {
				tap <- r
				continue
			}
			req := ""
			select {
			case req = <-lastReq:
			default:
			}
			send(p.filterReply(req, r))
		}
		p.mu.Lock()
		p.stubEOF = true
		if p.tap != nil {
			close(p.tap)
			p.tap = nil
		}
		p.mu.Unlock()
		c.Close() // the stub went away: so does the proxy's side
	}()
	for {
		req, err := readPacket(cr, c)
		if err != nil {
			return
		}
		if req == "\x03" {
			up.Write([]byte{0x03})
			continue
		}
		data := []byte(req)
		if reply, handled := p.local(req); handled {
			p.logZ(req, " refused") // answered here: Z and z only when refused
			send(reply)
			continue
		}
		if strings.HasPrefix(req, "Z0,") {
			addr := strings.Split(req, ",")[1]
			// bhyve translates the address at once (gdb.c,
			// update_sw_breakpoint) and answers EFAULT when it cannot.
			if r := p.ask(up, "m"+addr+",1"); r == "" || r[0] == 'E' {
				p.logZ(req, " refused")
				send("E0e")
				continue
			}
			p.bps[addr] = true
		}
		if p.mappedZ0 && (strings.HasPrefix(req, "Z1,") || strings.HasPrefix(req, "z1,")) {
			addr := strings.Split(req, ",")[1]
			if req[0] == 'Z' {
				p.drs[addr] = true
			} else {
				delete(p.drs, addr)
			}
		}
		p.logZ(req, "")
		select {
		case lastReq <- req:
		default:
		}
		up.Write(rsp.Frame(data))
	}
}

// ask sends a request of the proxy's own upstream and returns the reply
// (the target is stopped: no stop reply can come in between).
func (p *BhyveProxy) ask(up net.Conn, req string) string {
	tap := make(chan string, 1)
	p.mu.Lock()
	if p.stubEOF {
		p.mu.Unlock()
		return ""
	}
	p.tap = tap
	p.mu.Unlock()
	up.Write(rsp.Frame([]byte(req)))
	return <-tap // "" when closed
}

// local answers the packets bhyve does not implement, or implements
// differently, without asking QEMU (in NewMappedZ0Proxy's dialect, the few
// that one keeps from QEMU).
func (p *BhyveProxy) local(req string) (string, bool) {
	if p.mappedZ0 {
		if r, ok := p.phantomStep(req); ok {
			return r, true
		}
		switch {
		case req == "QStartNoAckMode", strings.HasPrefix(req, "qqemu."):
			return "", true
		case strings.HasPrefix(req, "Z1,") && len(p.drs) == 4 && !p.drs[strings.Split(req, ",")[1]]:
			return "E1c", true // ENOSPC: DR0-DR3 are taken
		}
		return "", false
	}
	switch {
	case strings.HasPrefix(req, "qSupported"):
		return "PacketSize=4096;swbreak+", true
	case req == "QStartNoAckMode", strings.HasPrefix(req, "qXfer:"), strings.HasPrefix(req, "vCont"), strings.HasPrefix(req, "qqemu."),
		strings.HasPrefix(req, "G"), strings.HasPrefix(req, "P"), strings.HasPrefix(req, "X"),
		len(req) > 1 && (req[0] == 'Z' || req[0] == 'z') && req[1] >= '1' && req[1] <= '4':
		return "", true
	case req == "?":
		return "S05", true
	}
	return "", false
}

func (p *BhyveProxy) filterReply(req, r string) string {
	if p.mappedZ0 {
		return r
	}
	if req == "g" && len(r) > 0 && r[0] != 'E' {
		n := 0
		for _, reg := range x86.GDBCore64 {
			n += reg.Size * 2
		}
		if len(r) > n {
			return r[:n]
		}
	}
	if len(r) > 0 && r[0] == 'T' && !strings.Contains(r, "watch") && (strings.HasPrefix(req, "c") || req == "s") {
		if req != "s" {
			return r + "swbreak:;"
		}
	}
	return r
}

func readPacket(r *bufio.Reader, w io.Writer) (string, error) { return rsp.ReadPacket(r, w) }
