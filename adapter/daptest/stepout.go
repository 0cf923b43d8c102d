package daptest

import (
	"fmt"
	"strings"
)

// StepOutScenario drives stepOut through testdata/guests/stepout on any
// backend, from its entry stop: out of 32-bit and 64-bit assembly without
// unwind information (it stops after the next return), out of a function
// with CFI (the caller's return address), a refusal in the outermost frame,
// and a stepOut that never ends (a loop), ended by a pause and then by a
// disconnect in the middle of another. sym gives the guest's symbols.
// outermost checks the refusal, which needs the image's CFI.
func StepOutScenario(c *Client, sym func(string) uint64, outermost bool) error {
	hex := func(a uint64) string { return fmt.Sprintf("%#x", a) }
	stopAt := func(label string) error {
		if _, err := c.Request("setInstructionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"instructionReference": hex(sym(label))}}}); err != nil {
			return err
		}
		if err := c.Continue(1); err != nil {
			return err
		}
		ev, err := c.Stopped()
		if err != nil {
			return err
		}
		if pc, err := c.PC(); err != nil || pc != sym(label) {
			return fmt.Errorf("run to %s: stopped (%s) at %#x (%v)", label, ev.Body.Reason, pc, err)
		}
		_, err = c.Request("setInstructionBreakpoints", map[string]any{"breakpoints": []any{}})
		return err
	}
	stepOut := func(from, want string) error {
		if err := stopAt(from); err != nil {
			return err
		}
		if err := c.Step("stepOut", 1, ""); err != nil {
			return fmt.Errorf("stepOut from %s: %w", from, err)
		}
		ev, err := c.Stopped()
		if err != nil {
			return fmt.Errorf("stepOut from %s: %w", from, err)
		}
		pc, err := c.PC()
		if err != nil || ev.Body.Reason != "step" || pc != sym(want) {
			return fmt.Errorf("stepOut from %s: stopped (%s) at %#x, want %s (%#x) %v", from, ev.Body.Reason, pc, want, sym(want), err)
		}
		return nil
	}
	for _, s := range []struct{ from, want string }{
		// 32-bit assembly, no unwind information, the top of the stack a
		// saved register: the step ends after f32's ret.
		{"f32_mid", "after_f32"},
		{"f64_mid", "after_f64"},         // the same in 64-bit code
		{"f64_cfi_mid", "after_f64_cfi"}, // with CFI: to the caller's return address
	} {
		if err := stepOut(s.from, s.want); err != nil {
			return err
		}
	}
	if out := c.Output("console"); !strings.Contains(out, "stepping until this frame executes a return instruction") {
		return fmt.Errorf("no console message about stepping to the next return: %q", out)
	}
	// The outermost frame (CFI: return address undefined): refused at
	// once, the vCPU still stopped where it was.
	if outermost {
		if err := stopAt("top64_body"); err != nil {
			return err
		}
		err := c.Step("stepOut", 1, "")
		if err == nil || !strings.Contains(err.Error(), "outermost") {
			return fmt.Errorf("stepOut of the outermost frame: %v, want a refusal", err)
		}
		if pc, err := c.PC(); err != nil || pc != sym("top64_body") {
			return fmt.Errorf("after the refusal: pc %#x (%v)", pc, err)
		}
	}
	// A stepOut that never returns (a loop without a return address) is
	// ended by a pause.
	if _, err := c.Request("writeMemory", map[string]any{"memoryReference": hex(sym("forever")), "data": "AQAAAA=="}); err != nil {
		return err
	}
	if err := stopAt("loop64_mid"); err != nil {
		return err
	}
	if err := c.Step("stepOut", 1, ""); err != nil {
		return err
	}
	if _, err := c.Request("pause", map[string]any{"threadId": 1}); err != nil {
		return fmt.Errorf("pause during a stepOut: %w", err)
	}
	ev, err := c.Stopped()
	if err != nil || ev.Body.Reason != "pause" {
		return fmt.Errorf("pause during a stepOut: %+v %v", ev, err)
	}
	if pc, err := c.PC(); err != nil || pc < sym("loop64") || pc > sym("loop64_mid")+8 {
		return fmt.Errorf("paused at %#x, outside loop64 (%v)", pc, err)
	}
	// A disconnect in the middle of one ends the session.
	if err := c.Step("stepOut", 1, ""); err != nil {
		return err
	}
	if err := c.Disconnect(); err != nil {
		return fmt.Errorf("disconnect during a stepOut: %w", err)
	}
	return nil
}

// PC is thread 1's innermost instruction pointer reference.
func (c *Client) PC() (uint64, error) {
	st, err := c.StackTrace(1)
	if err != nil {
		return 0, err
	}
	if len(st.Body.StackFrames) == 0 {
		return 0, fmt.Errorf("no stack frames")
	}
	var pc uint64
	_, err = fmt.Sscanf(st.Body.StackFrames[0].InstructionPointerReference, "0x%x", &pc)
	return pc, err
}
