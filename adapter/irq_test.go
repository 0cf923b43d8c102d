package adapter_test

import (
	"strconv"
	"strings"
	"testing"

	"vmdap/adapter/daptest"
	"vmdap/vmm/kvm"
	"vmdap/vmm/vmmtest"
)

// launchTimer starts a session on the timer guest with the in-kernel
// irqchip (its local APIC timer drives the interrupts).
func launchTimer(t *testing.T) *env {
	t.Helper()
	vmmtest.RequireKVM(t)
	if h, err := kvm.Probe(nil); err == nil && !h.SoftwareBreakpoints(true) {
		// The step over a hlt needs a temporary software breakpoint; a
		// bare step holds the interrupt off (vmm/kvm TestStepOverHalt
		// covers that behaviour on such hosts).
		t.Skip("this host has no software breakpoints with an irqchip (hlt-patch host): a step over a hlt holds the interrupt")
	}
	return launchGuest(t, "timer", "timer.c", map[string]any{"irqchip": true})
}

func (e *env) ticks(frame int) uint64 {
	e.t.Helper()
	s := e.eval(frame, "ticks")
	n, err := strconv.ParseUint(strings.Fields(s)[0], 0, 64)
	if err != nil {
		e.t.Fatalf("ticks = %q", s)
	}
	return n
}

// TestIRQChipTimerInterrupts: a guest driven by its local APIC timer.
// A breakpoint in the handler stops with the interrupted code on the
// stack (checked while the guest still waits for ticks, so one always
// comes); "next" over `while (ticks < n) hlt;` waits for the tick and
// lets the handler run (a bare step would hold the interrupt off and the
// loop would never advance); the guest then runs to its exit.
func TestIRQChipTimerInterrupts(t *testing.T) {
	e := launchTimer(t)
	wait := e.line("T:wait")
	_, err := e.c.SetBreakpoints(e.src, daptest.Line(wait))
	e.must(err)
	e.must(e.c.ConfigurationDone())
	e.stopped("breakpoint")
	e.at("wait_ticks", wait)
	_, err = e.c.SetBreakpoints(e.src)
	e.must(err)

	// A breakpoint in the handler, reached from the interrupted code.
	_, err = e.c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "on_tick"}}})
	e.must(err)
	e.must(e.c.Continue(1))
	if ev := e.stopped("function breakpoint"); ev == nil {
		t.Fatal("no stop")
	}
	st, err := e.c.StackTrace(1)
	e.must(err)
	var names []string
	for _, f := range st.Body.StackFrames {
		names = append(names, f.Name)
	}
	if len(names) < 3 || names[0] != "on_tick" || names[1] != "isr_timer" {
		t.Fatalf("stack in the handler: %v, want on_tick, isr_timer, then the interrupted code", names)
	}
	if !strings.Contains(strings.Join(names[2:], " "), "kmain") {
		t.Fatalf("stack in the handler: %v, does not unwind through the interrupt frame to kmain", names)
	}
	_, err = e.c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []any{}})
	e.must(err)
	// Back to the interrupted code in the wait loop.
	back := st.Body.StackFrames[2]
	if back.Name != "wait_ticks" || back.Line != wait {
		t.Fatalf("interrupted in %s:%d, want wait_ticks:%d", back.Name, back.Line, wait)
	}
	// The interrupted frame's stack pointer is the one the interrupt
	// frame saved (isr_timer's pushes: 10 words, then RIP, CS, RFLAGS, RSP).
	if got, want := e.eval(back.Id, "(unsigned long)$rsp"), e.eval(st.Body.StackFrames[1].Id, "*(unsigned long *)($rsp + 104)"); got != want {
		t.Fatalf("rsp of the interrupted frame: %s, the interrupt frame saved %s", got, want)
	}
	ibp := map[string]any{"breakpoints": []map[string]any{{"instructionReference": back.InstructionPointerReference}}}
	_, err = e.c.Request("setInstructionBreakpoints", ibp)
	e.must(err)
	e.must(e.c.Continue(1))
	e.stopped("instruction breakpoint")
	e.at("wait_ticks", wait)
	_, err = e.c.Request("setInstructionBreakpoints", map[string]any{"breakpoints": []any{}})
	e.must(err)

	// Each "next" on the wait line ends after one more tick, until the
	// loop is done.
	last := e.ticks(0)
	for i := 0; ; i++ {
		if i == 10 {
			t.Fatalf("still in the wait loop after %d steps, ticks = %d", i, e.ticks(0))
		}
		e.step("next")
		f := e.top()
		now := e.ticks(f.Id)
		if f.Line == e.line("T:seen") {
			if now < 3 {
				t.Fatalf("left the loop with ticks = %d", now)
			}
			break
		}
		if f.Line != wait || now <= last {
			t.Fatalf("next %d: at %s:%d with ticks %d (was %d); want the wait line with one more tick", i, f.Name, f.Line, now, last)
		}
		last = now
	}
	if code := e.runToExit(); code != 1 { // isa-debug-exit: (0<<1)|1, the guest saw its three ticks
		t.Fatalf("exit code %d", code)
	}
}
