package adapter_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-dap"
)

// TestBreakpointInsideInstructionRefused: an instruction or function
// breakpoint whose address is inside an instruction of a known function
// (the last byte of a 7-byte mov of sum_squares) is refused with
// the instruction that covers it, in either mode: a software one wrote its
// int3 into the store's displacement (the guest faulted, the breakpoint
// never hit) and a hardware one never fires. Breakpoints on instruction
// starts, and addresses no function covers, are placed as before, and the
// guest runs to its end.
func TestBreakpointInsideInstructionRefused(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	// Find the store and an address inside it from the disassembly.
	dis, err := e.c.Disassemble("0x100322", 0, 40) // sum_squares
	e.must(err)
	var store, next uint64
	for i, in := range dis.Body.Instructions {
		if len(strings.ReplaceAll(in.InstructionBytes, " ", "")) == 14 && i+1 < len(dis.Body.Instructions) { // 7 bytes
			store, next = mustHex(t, in.Address), mustHex(t, dis.Body.Instructions[i+1].Address)
			break
		}
	}
	if store == 0 {
		t.Fatalf("no 7-byte instruction in sum_squares: %+v", dis.Body.Instructions)
	}
	inside := next - 1
	insn := func(ref string, off int, mode string) dap.Breakpoint {
		t.Helper()
		bp := map[string]any{"instructionReference": ref, "offset": off}
		if mode != "" {
			bp["mode"] = mode
		}
		r, err := e.c.Request("setInstructionBreakpoints", map[string]any{"breakpoints": []map[string]any{bp}})
		e.must(err)
		return r.(*dap.SetInstructionBreakpointsResponse).Body.Breakpoints[0]
	}
	want := hexAddr(inside) + " is inside the instruction at " + hexAddr(store) + " (sum_squares+"
	for _, mode := range []string{"", "hardware"} {
		if bp := insn(hexAddr(next), -1, mode); bp.Verified || !strings.Contains(bp.Message, want) || !strings.Contains(bp.Message, "mov") {
			t.Fatalf("instruction breakpoint (mode %q) at %#x: %+v", mode, inside, bp)
		}
	}
	r, err := e.c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "*" + hexAddr(inside)}}})
	e.must(err)
	if bp := r.(*dap.SetFunctionBreakpointsResponse).Body.Breakpoints[0]; bp.Verified || !strings.Contains(bp.Message, want) {
		t.Fatalf("function breakpoint *%#x: %+v", inside, bp)
	}
	_, err = e.c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []any{}})
	e.must(err)
	// The instruction's own start, and the next one's, are fine; the
	// first is hit.
	if bp := insn(hexAddr(next), -int(next-store), ""); !bp.Verified {
		t.Fatalf("instruction breakpoint at %#x: %+v", store, bp)
	}
	e.must(e.c.Continue(1))
	e.stopped("instruction breakpoint")
	if pc := mustHex(t, e.top().InstructionPointerReference); pc != store {
		t.Fatalf("stopped at %#x, want %#x", pc, store)
	}
	// An address no function covers stays the user's responsibility
	// (.rodata: placed, never run).
	if bp := insn("0x101010", 0, ""); !bp.Verified {
		t.Fatalf("breakpoint outside any function: %+v", bp)
	}
	if code := e.runToExit(); code != 1 {
		t.Fatalf("exit code %d", code)
	}
}

func hexAddr(a uint64) string { return "0x" + strconv.FormatUint(a, 16) }
