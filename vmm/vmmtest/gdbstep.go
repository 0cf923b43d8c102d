package vmmtest

import (
	"context"
	_ "embed"
	"testing"
	"time"
)

// The gdb stepping oracle: where gdb's next, step and finish stop, from
// given breakpoint stops of a guest booted under QEMU (TCG), for tests
// that compare vmdap's next, stepIn and stepOut with them.

// StepScenario is a breakpoint to run to (the only one set; deleted once
// hit) and the gdb commands to give there, in order: "next", "step",
// "finish".
type StepScenario struct {
	Break string   `json:"break"` // a gdb location: "file:line" or a function
	Cmds  []string `json:"cmds"`
}

// Times is cmd k times over: a run of one step command in a scenario.
func Times(k int, cmd string) []string {
	out := make([]string, k)
	for i := range out {
		out[i] = cmd
	}
	return out
}

// StepOracle says what to run: each scenario from a boot of its own.
type StepOracle struct {
	QEMU, Kernel, Symbols string // as in Oracle
	Scenarios             []StepScenario
	// Outer names the function the depth counts frames up to (kmain).
	Outer string
	// QEMUArgs, when not nil, are the machine's QEMU arguments (else the
	// corpus guests' defaults, as in Oracle).
	QEMUArgs []string
}

// StepStop is where one command stopped (Index 0: the breakpoint stop).
type StepStop struct {
	Scenario int    `json:"scenario"`
	Index    int    `json:"index"`
	Cmd      string `json:"cmd"`
	Func     string `json:"func"` // the newest frame's, an inlined call's when gdb shows one
	File     string `json:"file"`
	Line     int    `json:"line"`
	PC       uint64 `json:"pc"`
	Depth    int    `json:"depth"` // frames above Outer's (-1: Outer not in the backtrace)
	// Frames names the frames from the newest to Outer's; only the
	// vmdap side fills it (to classify a difference of depth).
	Frames []string `json:"-"`
	Error  string   `json:"error"`
}

//go:embed gdbstep.py
var stepScript string

// RunStepOracle plays each scenario on its own boot of the guest: QEMU
// stopped at reset, gdb attached, run to the scenario's breakpoint, its
// commands. It returns each scenario's stops (the breakpoint stop first).
func RunStepOracle(t testing.TB, o StepOracle) [][]StepStop {
	t.Helper()
	stops := make([][]StepStop, len(o.Scenarios))
	for k, sc := range o.Scenarios {
		stops[k] = runStepScenario(t, o, sc)
		for i := range stops[k] {
			stops[k][i].Scenario = k
		}
	}
	return stops
}

func runStepScenario(t testing.TB, o StepOracle, sc StepScenario) []StepStop {
	t.Helper()
	gdb := RequireGDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addr, stop := startOracleQEMU(ctx, t, o.QEMU, o.Kernel, o.QEMUArgs)
	defer stop()
	cfg := map[string]any{"scenarios": []StepScenario{sc}, "outer": o.Outer, "remote": addr}
	stops, out, stderr := runGDBScript[StepStop](ctx, t, gdb, o.Symbols, "step", stepScript, "STEP_CONFIG", cfg)
	for _, s := range stops {
		if s.Error != "" {
			t.Fatalf("gdb step oracle, from %s: %s\n%s\n%s", sc.Break, s.Error, out, stderr)
		}
	}
	if len(stops) != len(sc.Cmds)+1 {
		t.Fatalf("gdb step oracle: from %s %d stops, want %d:\n%s\n%s", sc.Break, len(stops), len(sc.Cmds)+1, out, stderr)
	}
	return stops
}
