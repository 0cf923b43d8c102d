package gdbremote

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"vmdap/vmm/gdbremote/rsp"
	"vmdap/vmm/vmmtest"
)

// A transcript is lines `C "<packet>"` (client) and `S "<packet>"` (stub),
// each packet a Go-quoted string.

func readPkt(r *bufio.Reader, ack io.Writer) (string, error) { return rsp.ReadPacket(r, ack) }

// recorder is a transparent proxy that writes a transcript; done closes
// when both directions have ended.
func recorder(t *testing.T, upstream string, out io.Writer) (addr string, done <-chan struct{}) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	log := func(dir, p string) {
		mu.Lock()
		fmt.Fprintf(out, "%s %q\n", dir, p)
		mu.Unlock()
	}
	fin := make(chan struct{})
	go func() {
		defer close(fin)
		c, err := l.Accept()
		l.Close()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", upstream)
		if err != nil {
			return
		}
		stubDone := make(chan struct{})
		defer func() { <-stubDone }()
		go func() {
			defer close(stubDone)
			r := bufio.NewReader(up)
			for {
				p, err := readPkt(r, up)
				if err != nil {
					c.Close()
					return
				}
				log("S", p)
				c.Write(rsp.Frame([]byte(p)))
			}
		}()
		r := bufio.NewReader(c)
		for {
			p, err := readPkt(r, c)
			if err != nil {
				up.Close()
				return
			}
			log("C", p)
			up.Write(rsp.Frame([]byte(p)))
		}
	}()
	return l.Addr().String(), fin
}

// TestRecordTranscript records a session with a real QEMU and replays the
// fresh recording; with VMDAP_RECORD=1 it also refreshes
// testdata/qemu-attach.rsp, the transcript TestReplayQEMUTranscript uses.
func TestRecordTranscript(t *testing.T) {
	g := vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
	qt := qemuTarget("tcg", false)(t, g).(*Target)
	addr := qt.cfg.Addr
	qt.c.Close()
	defer qt.onClose()
	path := filepath.Join(t.TempDir(), "qemu-attach.rsp")
	if os.Getenv("VMDAP_RECORD") != "" {
		path = filepath.Join("testdata", "qemu-attach.rsp")
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	raddr, recorded := recorder(t, addr, f)
	tg, err := Attach(context.Background(), Config{Addr: raddr})
	if err != nil {
		t.Fatal(err)
	}
	entry, main64 := vmmtest.Sym(t, g, "entry32"), vmmtest.Sym(t, g, "main64")
	replayScript(t, tg, entry, main64)
	<-recorded
	f.Close()

	// The recording replays: the same packets, in the same order.
	rt, err := Attach(context.Background(), Config{Addr: replayStub(t, path)})
	if err != nil {
		t.Fatal(err)
	}
	replayScript(t, rt, entry, main64)
}

// replayScript is what both the recording and the replay do.
func replayScript(t *testing.T, tg *Target, entry, main64 uint64) {
	t.Helper()
	r, err := tg.Regs(0)
	if err != nil || r.RIP != entry {
		t.Fatalf("rip %#x (%v), want %#x", r.RIP, err, entry)
	}
	s, _ := tg.SRegs(0)
	if s.CR0&1 == 0 {
		t.Fatalf("cr0 %#x: not in protected mode at the Multiboot entry", s.CR0)
	}
	buf := make([]byte, 8)
	if n, err := tg.ReadMemory(0, buf, main64); n != 8 || err != nil {
		t.Fatalf("read %d %v", n, err)
	}
	if err := tg.InsertHWBreakpoint(main64); err != nil {
		t.Fatal(err)
	}
	if err := tg.Continue(); err != nil {
		t.Fatal(err)
	}
	st, err := tg.Wait(context.Background())
	if err != nil || st.PC != main64 {
		t.Fatalf("stop %v %v", st, err)
	}
	tg.RemoveHWBreakpoint(main64)
	tg.Close()
}

// replayStub answers a client from a transcript, checking every request.
func replayStub(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		l.Close()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		i := 0
		for i < len(lines) {
			ln := lines[i]
			pkt, err := strconv.Unquote(ln[2:])
			if err != nil {
				errc <- fmt.Errorf("transcript line %d: %v", i+1, err)
				return
			}
			if strings.HasPrefix(ln, "S ") {
				c.Write(rsp.Frame([]byte(pkt)))
				i++
				continue
			}
			p, err := readPkt(r, c)
			if err != nil {
				errc <- fmt.Errorf("transcript line %d: %v", i+1, err)
				return
			}
			if want := pkt; p != want {
				errc <- fmt.Errorf("transcript line %d: client sent %q, recorded %q", i+1, p, want)
				return
			}
			i++
		}
		errc <- nil
	}()
	t.Cleanup(func() {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	})
	return l.Addr().String()
}

func TestReplayQEMUTranscript(t *testing.T) {
	path := filepath.Join("testdata", "qemu-attach.rsp")
	tg, err := Attach(context.Background(), Config{Addr: replayStub(t, path)})
	if err != nil {
		t.Fatal(err)
	}
	if tg.stubName != "qemu" || tg.desc == nil || !tg.vCont || !tg.pWrite || !tg.z[1] {
		t.Fatalf("probe from the transcript: stub %s desc %v vCont %v P %v Z1 %v", tg.stubName, tg.desc != nil, tg.vCont, tg.pWrite, tg.z[1])
	}
	// entry32 and main64 of the recorded guest, from the transcript's
	// first register read and its Z1 packet.
	entry, main64 := transcriptAddrs(t, path)
	replayScript(t, tg, entry, main64)
}

func transcriptAddrs(t *testing.T, path string) (uint64, uint64) {
	data, _ := os.ReadFile(path)
	var main64 uint64
	for _, ln := range strings.Split(string(data), "\n") {
		if len(ln) < 3 {
			continue
		}
		p, _ := strconv.Unquote(ln[2:])
		if strings.HasPrefix(ln, "C ") && strings.HasPrefix(p, "Z1,") {
			fmt.Sscanf(strings.Split(p, ",")[1], "%x", &main64)
		}
	}
	// rip is at byte 128 of the first 'g' reply
	for _, ln := range strings.Split(string(data), "\n") {
		if len(ln) < 3 {
			continue
		}
		p, _ := strconv.Unquote(ln[2:])
		if strings.HasPrefix(ln, "S ") && len(p) > 2*136 && !strings.ContainsAny(p, "<>;:") {
			b, err := rsp.HexBytes(p[:2*136])
			if err == nil {
				var rip uint64
				for k := 7; k >= 0; k-- {
					rip = rip<<8 | uint64(b[128+k])
				}
				return rip, main64
			}
		}
	}
	t.Fatal("no register reply in the transcript")
	return 0, 0
}
