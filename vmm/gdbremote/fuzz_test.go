package gdbremote

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"vmdap/vmm/gdbremote/rsp"
)

// FuzzHandshake attaches to a stub whose replies are the input's
// NUL-separated parts, in order (one per request; the stub hangs up when
// they run out). Whatever they say, the attach ends, with a target whose
// vCPUs and register layout are within bounds or with an error; never a
// panic or a wait. The seed corpus (testdata/fuzz/FuzzHandshake) is a
// real QEMU session's replies.
func FuzzHandshake(f *testing.F) {
	f.Fuzz(func(t *testing.T, script []byte) {
		replies := strings.Split(string(script), "\x00")
		a, b := net.Pipe()
		go func() {
			defer b.Close()
			r := bufio.NewReader(b)
			for _, rep := range replies {
				if _, err := rsp.ReadPacket(r, b); err != nil {
					return
				}
				if _, err := b.Write(rsp.Frame([]byte(rep))); err != nil {
					return
				}
			}
		}()
		c := rsp.New(a, nil)
		c.Timeout = 2 * time.Second
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tg, err := attachConn(ctx, c, Config{Addr: "fuzz"})
		if err != nil {
			c.Close()
			return
		}
		if n := tg.VCPUs(); n < 1 || n > maxThreads {
			t.Fatalf("%d vCPUs", n)
		}
		if tg.desc != nil && len(tg.desc.Regs) == 0 && tg.desc.Size() != 0 {
			t.Fatalf("layout %+v", tg.desc)
		}
		tg.Regs(0)
		tg.Close()
	})
}
