package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
	"vmdap/vmm/vmmtest"
)

// TestStepOutQEMU runs daptest.StepOutScenario over QEMU TCG's GDB stub:
// stepOut out of assembly without a return address ends after the next
// return, the outermost frame is refused, and a pause or a disconnect
// ends a stepOut that never would.
func TestStepOutQEMU(t *testing.T) {
	vmmtest.RequireQEMU(t)
	// QEMU's -kernel takes the ELF32 repack; its CFI keeps the ELF64's
	// format, which symbols do not read from an ELF32 (the outermost-frame
	// refusal, which needs it, is checked on vmdap's VMM).
	g := vmmtest.BuildGuest(t, "stepout", vmmtest.ELF32)
	g64 := vmmtest.BuildGuest(t, "stepout")
	c := stdioClient(t)
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	if err := c.Launch(map[string]any{"program": g.Path, "symbols": g64.Path, "hypervisor": "qemu", "memory": 16, "stopOnEntry": true}); err != nil {
		t.Fatal(err)
	}
	c.WaitEvent("initialized")
	c.ConfigurationDone()
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "entry" {
		t.Fatalf("entry: %+v %v", ev, err)
	}
	if err := daptest.StepOutScenario(c, func(n string) uint64 { return vmmtest.Sym(t, g, n) }, false); err != nil {
		t.Fatal(err)
	}
}

// TestResetVectorFrameQEMU: attached to QEMU at its reset vector (-S),
// the frame's instruction pointer and the disassembly are at CS.base + IP
// (0xfffffff0, the BIOS's far jump), not at IP (0xfff0, zeros).
func TestResetVectorFrameQEMU(t *testing.T) {
	g := vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
	c, _ := attachToQEMU(t, g)
	c.WaitEvent("initialized")
	c.ConfigurationDone()
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "entry" {
		t.Fatalf("attach stop: %+v %v", ev, err)
	}
	st, err := c.StackTrace(1)
	if err != nil {
		t.Fatal(err)
	}
	f := st.Body.StackFrames[0]
	if f.InstructionPointerReference != "0xfffffff0" {
		t.Fatalf("frame at the reset vector: %+v, want instructionPointerReference 0xfffffff0", f)
	}
	d, err := c.Disassemble(f.InstructionPointerReference, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if in := d.Body.Instructions[0]; in.Address != "0xfffffff0" || !strings.HasPrefix(in.InstructionBytes, "ea") || !strings.Contains(in.Instruction, "jmp") {
		t.Fatalf("disassembly at the reset vector: %+v, want the BIOS's far jmp", in)
	}
	// $rip stays the register: IP.
	if r, err := c.Evaluate(f.Id, "$rip"); err != nil || r.Body.Result != "0x000000000000fff0" { // as the Registers view shows it
		t.Fatalf("$rip = %+v %v, want IP 0xfff0", r, err)
	}
}

// TestStepOutOfInlinedCall: at -O2 square exists only inlined; a stepOut
// from the breakpoint in it runs until the PC leaves the inlined code and
// stops in the frame it was inlined into, now on top, as gdb's finish
// does.
func TestStepOutOfInlinedCall(t *testing.T) {
	vmmtest.RequireKVM(t)
	for _, tag := range []string{"O2", "clang-O2"} {
		t.Run(tag, func(t *testing.T) { stepOutOfInlinedCall(t, tag) })
	}
}

func stepOutOfInlinedCall(t *testing.T, tag string) {
	g := vmmtest.BuildCorpus(t, tag)
	c := launchOnKVM(t, g.Path)
	if _, err := c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "square"}}}); err != nil {
		t.Fatal(err)
	}
	c.ConfigurationDone()
	if _, err := c.Stopped(); err != nil {
		t.Fatal(err)
	}
	st, err := c.StackTrace(1)
	if err != nil || len(st.Body.StackFrames) < 2 || st.Body.StackFrames[0].Name != "square" {
		t.Fatalf("at the breakpoint: %+v %v, want square (inlined) on top", st, err)
	}
	caller, callLine := st.Body.StackFrames[1].Name, st.Body.StackFrames[1].Line
	if _, err := c.Request("stepOut", map[string]any{"threadId": 1}); err != nil {
		t.Fatal(err)
	}
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "step" {
		t.Fatalf("stepOut: %+v %v", ev, err)
	}
	st, err = c.StackTrace(1)
	if err != nil || st.Body.StackFrames[0].Name != caller {
		t.Fatalf("after stepOut: %+v %v, want %s (line %d) on top", st, err, caller, callLine)
	}
}

// launchOnKVM starts a session of program on vmdap's VMM, up to its
// initialized event.
func launchOnKVM(t *testing.T, program string) *daptest.Client {
	t.Helper()
	c := stdioClient(t)
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	if err := c.Launch(map[string]any{"program": program, "memory": 64}); err != nil {
		t.Fatal(err)
	}
	c.WaitEvent("initialized")
	return c
}

// stepOK steps thread 1 (cmd: next, stepIn, stepOut) and waits for its
// stop.
func stepOK(t *testing.T, c *daptest.Client, cmd string) {
	t.Helper()
	if _, err := c.Request(cmd, map[string]any{"threadId": 1}); err != nil {
		t.Fatal(err)
	}
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "step" {
		t.Fatalf("%s: %+v %v", cmd, ev, err)
	}
}

// topFrame is thread 1's top frame.
func topFrame(t *testing.T, c *daptest.Client) dap.StackFrame {
	t.Helper()
	st, err := c.StackTrace(1)
	if err != nil || len(st.Body.StackFrames) == 0 {
		t.Fatalf("stackTrace: %+v %v", st, err)
	}
	return st.Body.StackFrames[0]
}

// TestNextOverInlinedCallOnTheLine: a next from a line that calls sink
// and then an inlined function (w += sink(w) + outer_inl(w)) goes to the
// next line, as gdb's does: the inlined call is on the line being
// stepped, so it is run over, not a stop at its first instruction shown
// on the same line.
func TestNextOverInlinedCallOnTheLine(t *testing.T) {
	vmmtest.RequireKVM(t)
	for _, tag := range []string{"O0", "clang-O0", "clang-O2"} { // at GCC -O2 the line table and the inlined ranges disagree, as for gdb; clang's agree
		t.Run(tag, func(t *testing.T) {
			g := vmmtest.BuildCorpus(t, tag)
			src := filepath.Join(g.Dir, "kernel.c")
			line, err := daptest.LineOf(src, "bp:sameline")
			if err != nil {
				t.Fatal(err)
			}
			c := launchOnKVM(t, g.Path)
			bps, err := c.SetBreakpoints(src, daptest.Line(line))
			if err != nil || !bps.Body.Breakpoints[0].Verified || bps.Body.Breakpoints[0].Line != line {
				t.Fatalf("breakpoint on line %d: %+v %v", line, bps, err)
			}
			c.ConfigurationDone()
			if _, err := c.Stopped(); err != nil {
				t.Fatal(err)
			}
			if f := topFrame(t, c); f.Name != "nest" || f.Line != line {
				t.Fatalf("at the breakpoint: %s:%d, want nest:%d", f.Name, f.Line, line)
			}
			stepOK(t, c, "next")
			if f := topFrame(t, c); f.Name != "nest" || f.Line <= line {
				t.Fatalf("after next: %s:%d, want nest past line %d", f.Name, f.Line, line)
			}
		})
	}
}
