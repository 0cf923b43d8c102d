package adapter_test

import (
	"strings"
	"testing"
)

// TestReadWatchRefusedOnCodeAndPageTables: page protection cannot trap
// reads of a page the CPU fetches code, walks page tables or delivers an
// exception from (KVM cannot run through such a page: the guest died with
// a hypervisor error or a triple fault). A read watchpoint there is refused with the reason,
// a write watchpoint on the same bytes works, and the guest runs on.
func TestReadWatchRefusedOnCodeAndPageTables(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	f := e.runToLine("total += squares[i];")
	cr3 := e.eval(f.Id, "$cr3")
	for _, c := range []struct{ addr, why string }{
		{"0x100500", "holds the image's code"}, // in .text, after kmain
		{cr3, "holds page tables of vCPU 0"},
		{e.eval(f.Id, "(unsigned long)&idt[6]"), "holds the IDT of vCPU 0"}, // every exception reads it
	} {
		for _, acc := range []string{"read", "readWrite"} {
			d := e.dataInfo(map[string]any{"name": c.addr, "asAddress": true, "bytes": 4})
			bp := e.setData(map[string]any{"dataId": d.DataId, "accessType": acc})[0]
			if bp.Verified || !strings.Contains(bp.Message, c.why) || !strings.Contains(bp.Message, "a write watchpoint works there") {
				t.Fatalf("%s watch of %s: %+v", acc, c.addr, bp)
			}
		}
		d := e.dataInfo(map[string]any{"name": c.addr, "asAddress": true, "bytes": 4})
		if bp := e.setData(map[string]any{"dataId": d.DataId, "accessType": "write"})[0]; !bp.Verified {
			t.Fatalf("write watch of %s: %+v", c.addr, bp)
		}
	}
	// The write watchpoints stay; nothing writes there and the guest ends
	// well (status 0: exit code 1).
	if code := e.runToExit(); code != 1 {
		t.Fatalf("exit code %d", code)
	}
}

// TestCodeRunFromReadWatchedPage: code that runs from a page a read
// watchpoint traps (placed there after the watchpoint) stops the guest
// with a message that names the watchpoint, not the bare hypervisor
// error, and the stop can be inspected until the next continue ends the
// session.
func TestCodeRunFromReadWatchedPage(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	f := e.runToLine("total += squares[i];")
	d := e.dataInfo(map[string]any{"name": "&scenario", "asAddress": true, "bytes": 4})
	bp := e.setData(map[string]any{"dataId": d.DataId, "accessType": "read"})[0]
	if !bp.Verified {
		t.Fatalf("read watch of scenario: %+v", bp)
	}
	// Jump into the watched page (bss: zeros, add %al,(%rax)).
	to := e.eval(f.Id, "(unsigned long)&scenario + 0x10")
	_, err := e.c.Request("setExpression", map[string]any{"expression": "$rip", "value": to, "frameId": f.Id})
	e.must(err)
	e.must(e.c.Continue(1))
	ev := e.stopped("exception")
	if !strings.Contains(ev.Body.Description, "read watchpoint on 4 bytes at") || !strings.Contains(ev.Body.Description, "cannot fetch instructions") {
		t.Fatalf("stop: %+v", ev.Body)
	}
	// Inspectable, as the stop says.
	st, err := e.c.StackTrace(1)
	if err != nil || len(st.Body.StackFrames) == 0 {
		t.Fatalf("stackTrace after the stop: %v %v", st, err)
	}
	if got := e.eval(0, "counter"); got == "" {
		t.Fatal("evaluate after the stop")
	}
	e.must(e.c.Continue(1))
	if _, err := e.c.WaitEvent("exited"); err != nil {
		t.Fatal(err)
	}
}
