package main

// A machine's core dump shows what the live session showed: a corpus
// guest stopped several calls deep, described over DAP (every thread's
// stack, every scope's variables expanded, evaluates, readMemory), is
// dumped (the console's dump on vmdap's VMM; on QEMU the same command,
// and QEMU's own dump-guest-memory with and without paging), then opened
// by a second session (attach with "coreFile"), which must describe it
// the same. The oracle is the live session, not a hand-written value.

import (
	"debug/elf"
	"encoding/base64"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
	"vmdap/vmm/vmmtest"
)

// machineView is what a session shows of a stopped machine, by content
// (no DAP handles), one line per fact.
type machineView []string

// coreUnrecorded are Registers-scope entries a core file cannot hold:
// QEMU's notes have no EFER, CR8, APIC base, debug or x87/SSE registers.
var coreUnrecorded = []string{"efer", "cr8", "apic_base", "Debug", "Float", "Vector", "x87", "SSE"}

// describeMachine records, for every thread: its frames, and in each frame
// every scope's variables (expanded to a few levels), then the evaluates
// and a readMemory of each address expression in mem.
func describeMachine(t *testing.T, c *daptest.Client, evals, mem []string) machineView {
	t.Helper()
	var v machineView
	m, err := c.Request("threads", nil)
	if err != nil {
		t.Fatal(err)
	}
	topFrame := 0
	for _, th := range m.(*dap.ThreadsResponse).Body.Threads {
		v = append(v, fmt.Sprintf("thread %d %s", th.Id, th.Name))
		tr, err := c.Request("stackTrace", map[string]any{"threadId": th.Id, "startFrame": 0, "levels": 20})
		if err != nil {
			t.Fatalf("stackTrace of thread %d: %v", th.Id, err)
		}
		for i, f := range tr.(*dap.StackTraceResponse).Body.StackFrames {
			src := ""
			if f.Source != nil {
				src = f.Source.Path
			}
			v = append(v, fmt.Sprintf("  #%d %s %s:%d pc=%s", i, f.Name, filepath.Base(src), f.Line, f.InstructionPointerReference))
			if topFrame == 0 {
				topFrame = f.Id
			}
			sc, err := c.Scopes(f.Id)
			if err != nil {
				t.Fatalf("scopes of %s: %v", f.Name, err)
			}
			for _, s := range sc.Body.Scopes {
				v = append(v, "    scope "+s.Name)
				v = describeVars(t, c, v, "      "+s.Name, s.VariablesReference, 0)
			}
		}
	}
	for _, e := range evals {
		r, err := c.Request("evaluate", map[string]any{"expression": e, "frameId": topFrame, "context": "repl"})
		if err != nil {
			v = append(v, fmt.Sprintf("eval %s: error %v", e, err))
			continue
		}
		b := r.(*dap.EvaluateResponse).Body
		v = append(v, fmt.Sprintf("eval %s = %s (%s)", e, b.Result, b.Type))
		v = describeVars(t, c, v, "  "+e, b.VariablesReference, 0)
	}
	for _, e := range mem {
		r, err := c.Evaluate(topFrame, e)
		if err != nil {
			t.Fatalf("evaluate %s: %v", e, err)
		}
		ref := r.Body.MemoryReference
		if ref == "" {
			ref = strings.Fields(r.Body.Result)[0]
		}
		rm, err := c.ReadMemory(ref, 0, 256)
		if err != nil {
			t.Fatalf("readMemory %s (%s): %v", e, ref, err)
		}
		b, _ := base64.StdEncoding.DecodeString(rm.Body.Data)
		v = append(v, fmt.Sprintf("memory %s at %s: %d unreadable, % x", e, rm.Body.Address, rm.Body.UnreadableBytes, b))
	}
	return v
}

// describeVars appends a variables reference's variables, their children
// to a bounded depth and count.
func describeVars(t *testing.T, c *daptest.Client, v machineView, path string, ref, depth int) machineView {
	if ref == 0 || depth > 3 {
		return v
	}
	vs, err := c.Variables(ref)
	if err != nil {
		return append(v, fmt.Sprintf("%s: error %v", path, err))
	}
	for i, x := range vs.Body.Variables {
		if i == 40 {
			return append(v, path+": …")
		}
		p := path + "." + x.Name
		if slices.ContainsFunc(coreUnrecorded, func(s string) bool { return strings.HasPrefix(x.Name, s) }) && strings.Contains(path, "Registers") {
			continue
		}
		v = append(v, fmt.Sprintf("%s = %s (%s)", p, x.Value, x.Type))
		v = describeVars(t, c, v, p, x.VariablesReference, depth+1)
	}
	return v
}

// sameView fails the test where two views differ, line by line (the
// first 20 lines that do).
func sameView(t *testing.T, what string, want, got machineView) {
	t.Helper()
	i, n := 0, 0
	for ; n < 20; n++ {
		j, g, w, differ := firstDiff(got, want, i)
		if !differ {
			break
		}
		t.Errorf("%s, line %d:\n live: %s\n core: %s", what, j, w, g)
		i = j + 1
	}
	if len(want) != len(got) {
		t.Errorf("%s: %d lines live, %d in the core", what, len(want), len(got))
	}
}

// corpusStop is the corpus guest stopped in level3 (frames of level3,
// level2, level1, kernel_main with arguments and locals).
type corpusStop struct {
	symbols string // the ELF with DWARF
	src     string
	line    int
}

func newCorpusStop(t *testing.T, tag string) corpusStop {
	g := vmmtest.BuildCorpus(t, tag)
	src := filepath.Join(g.Dir, "kernel.c")
	line, err := daptest.LineOf(src, "bp:level3")
	if err != nil {
		t.Fatal(err)
	}
	return corpusStop{symbols: g.Path, src: src, line: line}
}

// Evaluates and memory compared at the stop.
var (
	coreEvals = []string{"ticks", "counters", "run_queue", "*pkt", "current->comm", "$rip", "$rsp", "$cr3",
		"x/8xg $rsp", "x/4i $rip", "p/x $rflags"}
	coreMem = []string{"$rsp", "&counters"}
)

// runToStop sets the breakpoint, runs there and describes the machine.
func (cs corpusStop) runToStop(t *testing.T, c *daptest.Client) machineView {
	t.Helper()
	bps, err := c.SetBreakpoints(cs.src, daptest.Line(cs.line))
	if err != nil || !bps.Body.Breakpoints[0].Verified {
		t.Fatalf("setBreakpoints: %+v %v", bps, err)
	}
	if err := c.ConfigurationDone(); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := c.Stopped()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Body.Reason == "breakpoint" {
			break
		}
		if err := c.Continue(1); err != nil { // attached: stopped at reset
			t.Fatal(err)
		}
	}
	return describeMachine(t, c, coreEvals, coreMem)
}

// openCore opens a core file in a new session and describes it.
func (cs corpusStop) openCore(t *testing.T, core string) (*daptest.Client, machineView) {
	t.Helper()
	c := openCore(t, core, cs.symbols)
	return c, describeMachine(t, c, coreEvals, coreMem)
}

// openCore opens a core file with its program's symbols in a new
// session, stopped.
func openCore(t *testing.T, core, program string) *daptest.Client {
	t.Helper()
	c := stdioClient(t)
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.OpenCore(core, program); err != nil {
		t.Fatal(err)
	}
	return c
}

// repl runs a debug-console line.
func repl(c *daptest.Client, line string) (string, error) {
	r, err := c.Request("evaluate", map[string]any{"expression": line, "context": "repl"})
	if err != nil {
		return "", err
	}
	return r.(*dap.EvaluateResponse).Body.Result, nil
}

// TestCoreDumpKVM: on vmdap's own VMM, the console's dump writes a core
// that a second session shows as the live one did: a 64-bit guest (an
// x86-64 core) and a 32-bit one (an i386 core, as QEMU writes a machine
// whose first CPU is not in long mode).
func TestCoreDumpKVM(t *testing.T) {
	vmmtest.RequireKVM(t)
	for _, c := range []struct{ tag, machine string }{{"O0", "X86-64"}, {"m32", "Intel 80386"}} {
		t.Run(c.tag, func(t *testing.T) { coreDumpKVM(t, newCorpusStop(t, c.tag), c.machine) })
	}
}

func coreDumpKVM(t *testing.T, cs corpusStop, machine string) {
	c := stdioClient(t)
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	if err := c.Launch(map[string]any{"program": cs.symbols, "memory": 64, "vcpus": 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitEvent("initialized"); err != nil {
		t.Fatal(err)
	}
	live := cs.runToStop(t, c)
	core := filepath.Join(t.TempDir(), "guest core") // a space: no shell sees the name
	out, err := repl(c, fmt.Sprintf("dump %q", core))
	if err != nil || !strings.Contains(out, "wrote "+core) {
		t.Fatalf("dump: %q %v", out, err)
	}
	t.Log(out)
	// The live session goes on as before.
	sameView(t, "live after the dump", live, describeMachine(t, c, coreEvals, coreMem))
	checkCoreFile(t, core, machine)
	_, got := cs.openCore(t, core)
	sameView(t, "vmdap's dump", live, got)
}

// TestCoreDumpQEMU: under QEMU (launched by vmdap), the console's dump
// (which has QEMU write it: a GDB stub reads no physical memory) and
// QEMU's own dump-guest-memory, without and with paging (-p), write cores
// that a second session shows as the live one did: a 64-bit guest, and a
// 32-bit one (qemu-system-i386, whose dumps are ELF32 cores).
func TestCoreDumpQEMU(t *testing.T) {
	vmmtest.RequireQEMU(t)
	t.Run("x86_64", func(t *testing.T) {
		cs := newCorpusStop(t, "O0")
		coreDumpQEMU(t, "qemu-system-x86_64", vmmtest.BuildCorpus(t, "O0", vmmtest.ELF32).Path, cs) // -kernel: Multiboot
	})
	t.Run("i386", func(t *testing.T) {
		cs := newCorpusStop(t, "m32")
		coreDumpQEMU(t, "qemu-system-i386", cs.symbols, cs)
	})
}

func coreDumpQEMU(t *testing.T, qemu, kernel string, cs corpusStop) {
	if _, err := exec.LookPath(qemu); err != nil {
		t.Skipf("skipping: %s is not installed", qemu)
	}
	c := stdioClient(t)
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	if err := c.Launch(map[string]any{"program": kernel, "symbols": cs.symbols, "hypervisor": "qemu", "qemuPath": qemu, "memory": 64}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitEvent("initialized"); err != nil {
		t.Fatal(err)
	}
	live := cs.runToStop(t, c)
	dir := t.TempDir()
	for _, d := range []struct{ name, file, cmd string }{
		// QEMU is given the name as its monitor's quoted string: spaces,
		// quotes and backslashes reach it as they are.
		{"vmdap's dump", `vmdap's "dump" \ core`, "dump %q"},
		{"dump-guest-memory", "guest.core", "monitor dump-guest-memory %s"},
		{"dump-guest-memory -p", "guest-paging.core", "monitor dump-guest-memory -p %s"},
	} {
		core := filepath.Join(dir, d.file)
		out, err := repl(c, fmt.Sprintf(d.cmd, core))
		if err != nil {
			t.Fatalf("%s: %q %v", d.name, out, err)
		}
		t.Logf("%s: %s", d.name, out)
		sameView(t, "live after "+d.name, live, describeMachine(t, c, coreEvals, coreMem))
		checkCoreFile(t, core, "")
		cc, got := cs.openCore(t, core)
		if lossy := clampedLoads(t, core); lossy != "" {
			// QEMU (7.2 here) clamps a paging dump's PT_LOAD for a
			// mapping that spans several RAM blocks (below and above
			// the 640 KiB hole) to the first block: the rest of RAM is
			// in the file but no header says where. The core session
			// says so instead of showing zeros.
			t.Logf("%s: %s: the stop's registers are compared, memory must be refused", d.name, lossy)
			if want := live[:2]; !slices.Equal(got[:2], want) {
				t.Errorf("%s: the core shows %q, the live session %q", d.name, got[:2], want)
			}
			if r, err := cc.Evaluate(0, "counters"); err == nil && !strings.Contains(r.Body.Result, "not in the dump") || err != nil && !strings.Contains(err.Error(), "not in the dump") {
				t.Errorf("%s: counters in memory the dump did not store: %+v %v", d.name, r, err)
			}
			continue
		}
		sameView(t, d.name, withoutSegmentCaches(live), withoutSegmentCaches(got))
	}
}

// segmentCache matches the lines of a segment's descriptor cache (limit,
// attributes) and of GDTR and IDTR: a GDB stub's 'g' packet has the
// selectors only, and in long mode vmdap asks QEMU's monitor for no
// more; QEMU's dump has them.
var segmentCache = regexp.MustCompile(`Registers\.Segments\.((cs|ds|es|fs|gs|ss|tr|ldtr)( = |\.limit = |\.attributes = )|(gdtr|idtr) = )`)

func withoutSegmentCaches(v machineView) machineView {
	return slices.DeleteFunc(slices.Clone(v), segmentCache.MatchString)
}

// clampedLoads says how a core file's PT_LOADs store less than they
// describe ("" when each stores all).
func clampedLoads(t *testing.T, core string) string {
	f, err := elf.Open(core)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Filesz < p.Memsz {
			return fmt.Sprintf("its PT_LOAD at physical %#x (virtual %#x) stores %#x of %#x bytes", p.Paddr, p.Vaddr, p.Filesz, p.Memsz)
		}
	}
	return ""
}

// checkCoreFile has readelf check the file's ELF layout: one PT_NOTE,
// PT_LOADs by physical address, the CORE and QEMU notes, and the machine
// readelf names (unless "").
func checkCoreFile(t *testing.T, core, machine string) {
	t.Helper()
	if _, err := exec.LookPath("readelf"); err != nil {
		t.Log("readelf is not installed: the ELF layout is checked by vmdap's reader only")
		return
	}
	out, err := exec.Command("readelf", "-W", "-h", "-l", "-n", core).CombinedOutput()
	if err != nil {
		t.Fatalf("readelf: %v\n%s", err, out)
	}
	for _, want := range []string{"CORE (Core file)", "NOTE", "LOAD", "NT_PRSTATUS", "QEMU"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("readelf shows no %q:\n%s", want, out)
		}
	}
	if machine != "" && !regexp.MustCompile(`Machine:\s+.*`+regexp.QuoteMeta(machine)).Match(out) {
		t.Errorf("readelf shows no machine %s:\n%s", machine, out)
	}
	if strings.Contains(string(out), "Warning") {
		t.Errorf("readelf warns:\n%s", out)
	}
}
