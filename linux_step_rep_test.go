package main

import (
	"debug/elf"
	"fmt"
	"testing"

	"vmdap/session/symbols"
	"vmdap/vmm/vmmtest"
	"vmdap/x86"
	"vmdap/x86/disasm"
)

// TestLinuxNextOverRepStosUnderQEMU: a next from a line whose code is a
// rep stos (do_one_initcall's memset of msgbuf, inlined) goes on to the
// next line, as gdb's next does (init/main.c 1233, then 1236), rather than
// stopping on the same line after each of the instruction's iterations.
func TestLinuxNextOverRepStosUnderQEMU(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	sym, err := symbols.Load(k.Vmlinux, "")
	mustOK(t, err)
	fn := sym.FuncByName("do_one_initcall")
	if fn == nil {
		t.Fatal("no do_one_initcall")
	}
	f, err := elf.Open(k.Vmlinux)
	mustOK(t, err)
	defer f.Close()
	text := f.Section(".text")
	code := make([]byte, fn.High-fn.Low)
	_, err = text.ReadAt(code, int64(fn.Low-text.Addr))
	mustOK(t, err)
	var rep, prev uint64
	for off := 0; off < len(code); {
		in, err := disasm.Decode(code[off:], x86.Mode(64), fn.Low+uint64(off))
		if err != nil {
			break
		}
		if in.Rep {
			rep = in.PC
			break
		}
		prev = in.PC
		off += in.Len
	}
	if rep == 0 {
		t.Skip("skipping: this kernel's do_one_initcall has no rep string instruction")
	}
	line, _ := sym.PCToLine(rep)

	addr, _ := startQEMU(t, "-machine", "pc", "-m", "512", "-smp", "1", "-serial", "null",
		"-kernel", k.Vmlinuz, "-append", "console=ttyS0 nokaslr")
	c := attachDAP(t, addr, map[string]any{"program": k.Vmlinux})
	_, err = c.WaitEvent("initialized")
	mustOK(t, err)
	_, err = c.Request("setInstructionBreakpoints", map[string]any{"breakpoints": []map[string]any{
		{"instructionReference": fmt.Sprintf("%#x", prev)}}})
	mustOK(t, err)
	mustOK(t, c.ConfigurationDone())
	_, err = c.Stopped()
	mustOK(t, err)
	mustOK(t, c.Continue(1))
	ev, err := c.Stopped()
	mustOK(t, err)
	if pc, _ := c.PC(); pc != prev {
		t.Fatalf("stopped (%s) at %#x, want the instruction before the rep stos, %#x", ev.Body.Reason, pc, prev)
	}
	// Next to the rep stos's line (its start), then over it.
	var pc uint64
	for i := 0; i < 3 && pc != rep; i++ {
		mustOK(t, c.Step("next", 1, "line"))
		_, err = c.Stopped()
		mustOK(t, err)
		pc, err = c.PC()
		mustOK(t, err)
	}
	if pc != rep {
		t.Fatalf("nexts from %#x stopped at %#x, never at the rep stos's line (%#x)", prev, pc, rep)
	}
	mustOK(t, c.Step("next", 1, "line"))
	_, err = c.Stopped()
	mustOK(t, err)
	pc, err = c.PC()
	mustOK(t, err)
	st, err := c.StackTrace(1)
	mustOK(t, err)
	top := st.Body.StackFrames[0]
	if pc == rep || top.Name != "do_one_initcall" || top.Line == line.Line {
		t.Fatalf("next from %s:%d (a rep stos at %#x) stopped at %#x, %s:%d; want a later line of do_one_initcall",
			line.File, line.Line, rep, pc, top.Name, top.Line)
	}
}
