//go:build linux && amd64

package adapter_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
	"vmdap/vmm/kvm"
	"vmdap/vmm/vmmtest"
)

func baseline(b *testing.B) *kvm.Baseline {
	r, err := kvm.NewBaseline()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.Close)
	return r
}

// mechSession launches the mech guest over DAP and runs it to its ready
// hlt; it returns the client and the guest.
func mechSession(b *testing.B) (*daptest.Client, *vmmtest.Guest, int) {
	vmmtest.RequireKVM(b)
	g := vmmtest.BuildGuest(b, "mech")
	t := &testing.T{}
	c, _ := newClient(t)
	if _, err := c.Initialize(); err != nil {
		b.Fatal(err)
	}
	if err := c.Launch(map[string]any{"program": g.Path, "memory": 64}); err != nil {
		b.Fatal(err)
	}
	c.WaitEvent("initialized")
	c.ConfigurationDone()
	if _, err := c.Stopped(); err != nil { // every vCPU halted at "ready"
		b.Fatal(err)
	}
	st, err := c.StackTrace(1)
	if err != nil {
		b.Fatal(err)
	}
	return c, g, st.Body.StackFrames[0].Id
}

func setReg(b *testing.B, c *daptest.Client, frame int, name string, v uint64) {
	sc, err := c.Scopes(frame)
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range sc.Body.Scopes {
		if s.Name != "Registers" {
			continue
		}
		groups, _ := c.Variables(s.VariablesReference)
		for _, gv := range groups.Body.Variables {
			if gv.Name == "General" {
				if _, err := c.Request("setVariable", map[string]any{"variablesReference": gv.VariablesReference, "name": name, "value": fmt.Sprint(v)}); err != nil {
					b.Fatal(err)
				}
				return
			}
		}
	}
	b.Fatal("no General registers")
}

// BenchmarkDAPInstructionStep: the whole DAP round trip of an instruction
// step (stepIn request and response, stopped event, stackTrace) beside
// the raw KVM single-step loop.
func BenchmarkDAPInstructionStep(b *testing.B) {
	raw := baseline(b)
	c, g, frame := mechSession(b)
	setReg(b, c, frame, "rip", g.Symbols["case_bench"])
	var tRaw, tDAP time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(500, b.N-done)
		t0 := time.Now()
		raw.Steps(n)
		t1 := time.Now()
		for i := 0; i < n; i++ {
			if err := c.Step("stepIn", 1, "instruction"); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Stopped(); err != nil {
				b.Fatal(err)
			}
			if _, err := c.StackTrace(1); err != nil {
				b.Fatal(err)
			}
		}
		tDAP += time.Since(t1)
		tRaw += t1.Sub(t0)
		done += n
	}
	report(b, "steps", tRaw, tDAP)
}

// BenchmarkConditionalBreakpoint: hits of a breakpoint whose condition is
// false (evaluated in the adapter, the guest resumed at once) beside the
// raw hit/step/re-insert loop.
func BenchmarkConditionalBreakpoint(b *testing.B) {
	raw := baseline(b)
	c, g, frame := mechSession(b)
	r, err := c.Request("setInstructionBreakpoints", map[string]any{"breakpoints": []map[string]any{{
		"instructionReference": fmt.Sprintf("%#x", g.Symbols["loop_dec"]), "condition": "$rcx == 0x7fffffff"}}})
	if err != nil || !r.(*dap.SetInstructionBreakpointsResponse).Body.Breakpoints[0].Verified {
		b.Fatal(err)
	}
	var tRaw, tDAP time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(2000, b.N-done)
		t0 := time.Now()
		raw.Hits(n)
		tRaw += time.Since(t0)
		b.StopTimer()
		st, _ := c.StackTrace(1)
		frame = st.Body.StackFrames[0].Id
		if _, err := c.Request("writeMemory", map[string]any{"memoryReference": fmt.Sprintf("%#x", g.Symbols["loop_count"]),
			"data": le64b64(uint64(n))}); err != nil {
			b.Fatal(err)
		}
		setReg(b, c, frame, "rip", g.Symbols["case_loop"])
		b.StartTimer()
		t1 := time.Now()
		if err := c.Continue(1); err != nil {
			b.Fatal(err)
		}
		if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "pause" {
			b.Fatalf("%v %v", ev, err)
		}
		tDAP += time.Since(t1)
		done += n
	}
	report(b, "hits", tRaw, tDAP)
}

func report(b *testing.B, unit string, tRaw, tOurs time.Duration) {
	rawRate := float64(b.N) / tRaw.Seconds()
	ourRate := float64(b.N) / tOurs.Seconds()
	b.ReportMetric(rawRate, "raw-"+unit+"/s")
	b.ReportMetric(ourRate, "dap-"+unit+"/s")
	b.ReportMetric(ourRate/rawRate, "ratio")
}

func le64b64(v uint64) string {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return b64(b)
}
