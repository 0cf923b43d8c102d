package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/google/go-dap"
	"github.com/sirupsen/logrus"

	"vmdap/adapter"
	"vmdap/adapter/daptest"
	"vmdap/vmm/vmmtest"
)

// BenchmarkLinuxHeavy measures the heavy requests a kernel developer
// makes on Debian's cloud kernel, booted under QEMU TCG to a busybox
// /init that loaded a module and keeps opening files, and the memory of a
// long session of steps. The adapter runs in this process (its goroutines
// and heap are counted). Each heavy request is reported beside the small
// one (evaluate init_task.comm) of the same run, as a ratio, with the
// size of its response:
//
//	go test -run '^$' -bench LinuxHeavy -benchtime 1x .
func BenchmarkLinuxHeavy(b *testing.B) {
	k := vmmtest.RequireLinux(b)
	vmmtest.RequireQEMU(b)
	mod := vmmtest.RequireLinuxModule(b, k, "kernel/fs/nls/nls_ascii")
	ko, err := os.ReadFile(mod.KO)
	if err != nil {
		b.Fatal(err)
	}
	const ready = "VMDAP-HEAVY-READY"
	initrd := filepath.Join(b.TempDir(), "initrd.cpio")
	// A kernel log of 4 MB, most of it filled (log_buf_len=4M): what a
	// long-running machine's dmesg returns.
	extra := "i=0; while [ $i -lt 24000 ]; do echo \"<6>vmdap-fill $i: a line of the kernel log, as drivers write them, long enough\" >/dev/kmsg; i=$((i+1)); done\n" +
		"$B insmod /mod.ko && echo '<2>" + ready + "' >/dev/kmsg\n" +
		"while :; do $B cat /proc/version >/dev/null; done"
	if err := os.WriteFile(initrd, vmmtest.InitramfsWith(b, extra, map[string][]byte{"mod.ko": ko}), 0o644); err != nil {
		b.Fatal(err)
	}
	serial := filepath.Join(b.TempDir(), "serial.log")
	addr, _ := startQEMU(b, "-machine", "pc", "-m", "512", "-smp", "2", "-serial", "file:"+serial,
		"-kernel", k.Vmlinuz, "-initrd", initrd, "-append", "console=ttyS0 nokaslr panic=-1 log_buf_len=4M loglevel=3")

	goroutines0 := runtime.NumGoroutine()
	p1, p2 := net.Pipe()
	srv := &adapter.Server{Backends: backends{}, Log: discardLog(), IndexCache: defaultIndexCache()}
	done := make(chan struct{})
	go func() { srv.ServeConn(p1); close(done) }()
	c := daptest.New(rwc{p2, p2})
	c.Timeout = 3 * time.Minute
	if _, err := c.Initialize(); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		_, err = c.Request("attach", map[string]any{"gdbServer": addr, "program": k.Vmlinux, "modules": mod.DebugDir})
		if err == nil || !strings.Contains(err.Error(), "connect") {
			break
		}
		time.Sleep(50 * time.Millisecond) // QEMU is starting
	}
	if err != nil {
		b.Fatal(err)
	}
	c.WaitEvent("initialized")
	c.ConfigurationDone()
	c.Stopped()
	c.Continue(1)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, _ := os.ReadFile(serial)
		if strings.Contains(string(out), ready) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("no %s on the console:\n%s", ready, out)
		}
		time.Sleep(200 * time.Millisecond) // polling the guest's console
	}

	type row struct {
		req, size string
		d         time.Duration
		bytes     int
		note      string
	}
	var rows []row
	req := func(name, size, cmd string, args map[string]any) (dap.Message, error) {
		b.Helper()
		start := time.Now()
		m, raw, err := c.RequestRaw(cmd, args)
		d := time.Since(start)
		note := ""
		if err != nil {
			note = "error: " + err.Error()
		}
		if len(note) > 120 {
			note = note[:120]
		}
		rows = append(rows, row{name, size, d, len(raw), note})
		return m, err
	}
	// Stop the kernel where it opens a file: a kernel frame with locals.
	setFn := func(names ...string) (dap.Message, error) {
		var bps []map[string]any
		for _, n := range names {
			bps = append(bps, map[string]any{"name": n})
		}
		return c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": bps})
	}
	if _, err := setFn("do_sys_openat2"); err != nil {
		b.Fatal(err)
	}
	ev, err := c.Stopped()
	if err != nil || ev.Body.Reason != "function breakpoint" {
		b.Fatalf("stop at do_sys_openat2: %+v %v", ev, err)
	}
	thread := ev.Body.ThreadId
	frame := func() int {
		b.Helper()
		st, err := c.StackTrace(thread)
		if err != nil || len(st.Body.StackFrames) == 0 {
			b.Fatalf("stackTrace: %v", err)
		}
		return st.Body.StackFrames[0].Id
	}
	fid := frame()
	eval := func(name, expr, context string) *dap.EvaluateResponse {
		m, err := req(name, "", "evaluate", map[string]any{"expression": expr, "frameId": fid, "context": context})
		if err != nil {
			return nil
		}
		r := m.(*dap.EvaluateResponse)
		rows[len(rows)-1].note = fmt.Sprintf("%.70q", r.Body.Result)
		return r
	}
	vars := func(name, size string, ref int, extra map[string]any) []dap.Variable {
		args := map[string]any{"variablesReference": ref}
		for k, v := range extra {
			args[k] = v
		}
		m, err := req(name, size, "variables", args)
		if err != nil {
			return nil
		}
		return m.(*dap.VariablesResponse).Body.Variables
	}
	eval("evaluate init_task.comm (the small request)", "init_task.comm", "watch")
	if m, err := req("scopes", "", "scopes", map[string]any{"frameId": fid}); err == nil {
		for _, sc := range m.(*dap.ScopesResponse).Body.Scopes {
			if l := vars("variables "+sc.Name, fmt.Sprint(sc.NamedVariables, " named"), sc.VariablesReference, nil); l != nil {
				rows[len(rows)-1].note = fmt.Sprintf("%d vars", len(l))
			}
		}
	}

	// init_task: one level, then every child a level and two deeper.
	if r := eval("evaluate init_task", "init_task", "watch"); r != nil {
		lvl := vars("variables init_task", fmt.Sprint(r.Body.NamedVariables, " named"), r.Body.VariablesReference, nil)
		for depth := 2; depth <= 3; depth++ {
			start := time.Now()
			n, bytes0, reqs := 0, 0, 0
			var next []dap.Variable
			for _, v := range lvl {
				if v.VariablesReference == 0 {
					continue
				}
				before := len(rows)
				kids := vars("", "", v.VariablesReference, nil)
				bytes0 += rows[before].bytes
				rows = rows[:before]
				reqs++
				n += len(kids)
				next = append(next, kids...)
			}
			rows = append(rows, row{fmt.Sprintf("variables init_task, every child at depth %d", depth),
				fmt.Sprintf("%d requests, %d vars", reqs, n), time.Since(start), bytes0, ""})
			lvl = next
		}
	}
	if r := eval("evaluate __per_cpu_offset", "__per_cpu_offset", "watch"); r != nil {
		rows[len(rows)-1].note = fmt.Sprintf("indexedVariables %d", r.Body.IndexedVariables)
		all := vars("variables __per_cpu_offset (no paging)", "", r.Body.VariablesReference, nil)
		rows[len(rows)-1].note = fmt.Sprintf("%d vars", len(all))
		page := vars("variables __per_cpu_offset start 8000 count 100", "", r.Body.VariablesReference,
			map[string]any{"filter": "indexed", "start": 8000, "count": 100})
		if len(page) > 0 {
			rows[len(rows)-1].note = fmt.Sprintf("%d vars, first %s", len(page), page[0].Name)
		} else {
			rows[len(rows)-1].note = "0 vars"
		}
		vars("variables __per_cpu_offset filter named", "", r.Body.VariablesReference, map[string]any{"filter": "named"})
	}
	// The largest objects: a 367 KB struct, a 4 MB char array, a 128 KB
	// one, a 360 KB array of structs.
	for _, g := range []string{"rcu_state", "sme_workarea", "__log_buf", "_printk_rb_static_infos"} {
		if r := eval("evaluate "+g, g, "watch"); r != nil && r.Body.VariablesReference != 0 {
			vars("variables "+g, fmt.Sprint(r.Body.NamedVariables+r.Body.IndexedVariables, " children"), r.Body.VariablesReference, nil)
		}
	}
	eval("evaluate *init_task.mm", "*init_task.mm", "watch")
	if r := eval("evaluate *init_task.active_mm", "*init_task.active_mm", "watch"); r != nil {
		vars("variables *init_task.active_mm", fmt.Sprint(r.Body.NamedVariables, " named"), r.Body.VariablesReference, nil)
	}
	if r := eval("evaluate per_cpu(runqueues, 0)", "per_cpu(runqueues, 0)", "watch"); r != nil {
		vars("variables per_cpu(runqueues, 0)", fmt.Sprint(r.Body.NamedVariables, " named"), r.Body.VariablesReference, nil)
	}
	for _, text := range []string{"", "s", "init_t"} {
		m, err := req("completions "+fmt.Sprintf("%q", text), "", "completions", map[string]any{"frameId": fid, "text": text, "column": len(text) + 1})
		if err == nil {
			rows[len(rows)-1].note = fmt.Sprintf("%d targets", len(m.(*dap.CompletionsResponse).Body.Targets))
		}
	}
	st, _ := c.StackTrace(thread)
	pc := st.Body.StackFrames[0].InstructionPointerReference
	for _, n := range []int{100, 10000} {
		m, err := req("disassemble", fmt.Sprint(n, " insns"), "disassemble", map[string]any{"memoryReference": pc, "instructionOffset": -n / 2, "instructionCount": n, "resolveSymbols": true})
		if err == nil {
			rows[len(rows)-1].note = fmt.Sprintf("%d insns", len(m.(*dap.DisassembleResponse).Body.Instructions))
		}
	}
	for _, n := range []int{4096, 1 << 20, 2 << 20} {
		m, err := req("readMemory kernel text", fmt.Sprint(n, " B"), "readMemory", map[string]any{"memoryReference": "0xffffffff81000000", "count": n})
		if err == nil {
			r := m.(*dap.ReadMemoryResponse).Body
			rows[len(rows)-1].note = fmt.Sprintf("%d base64 chars, unreadable %d", len(r.Data), r.UnreadableBytes)
		}
	}
	for _, cmd := range []string{"tasks", "dmesg", "lsmod"} {
		if r := eval("console "+cmd, cmd, "repl"); r != nil {
			lines := strings.Split(strings.TrimSuffix(r.Body.Result, "\n"), "\n")
			rows[len(rows)-1].note = fmt.Sprintf("%d lines: %.60q … %.60q", len(lines), lines[0], lines[len(lines)-1])
		}
	}
	var lines []map[string]any
	for l := 10; l <= 12000; l += 10 {
		lines = append(lines, map[string]any{"line": l})
	}
	if m, err := req("setBreakpoints kernel/sched/core.c", fmt.Sprint(len(lines), " lines"), "setBreakpoints",
		map[string]any{"source": map[string]any{"path": "kernel/sched/core.c"}, "breakpoints": lines}); err == nil {
		v := 0
		for _, bp := range m.(*dap.SetBreakpointsResponse).Body.Breakpoints {
			if bp.Verified {
				v++
			}
		}
		rows[len(rows)-1].note = fmt.Sprintf("%d verified", v)
	}
	req("setBreakpoints kernel/sched/core.c (clear)", "0 lines", "setBreakpoints",
		map[string]any{"source": map[string]any{"path": "kernel/sched/core.c"}, "breakpoints": []map[string]any{}})
	for _, names := range [][]string{{"do_sys_openat2", "jhash"}, {"do_sys_openat2", "jhash*"}, {"do_sys_openat2", "*_openat*"}, {"do_sys_openat2", "sched_*"}, {"do_sys_openat2", "*lock*"}} {
		bps := []map[string]any{}
		for _, n := range names {
			bps = append(bps, map[string]any{"name": n})
		}
		if m, err := req("setFunctionBreakpoints "+names[1], "", "setFunctionBreakpoints", map[string]any{"breakpoints": bps}); err == nil {
			bp := m.(*dap.SetFunctionBreakpointsResponse).Body.Breakpoints[1]
			rows[len(rows)-1].note = fmt.Sprintf("verified %v %.80s", bp.Verified, bp.Message)
		}
	}
	setFn("do_sys_openat2")

	// Hovers: the same expression evaluated again and again at one stop
	// (an editor evaluates at each hover, the watch view at each
	// refresh).
	{
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		for i := 0; i < 100; i++ {
			c.Request("evaluate", map[string]any{"expression": "init_task", "frameId": fid, "context": "hover"})
		}
		d := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		grew := int64(after.HeapInuse) - int64(before.HeapInuse)
		rows = append(rows, row{"evaluate init_task, 100 hovers at one stop", "", d, 0,
			fmt.Sprintf("heap in use %+d MB", grew>>20)})
		b.ReportMetric(float64(grew>>20), "hovers-heap-MB")
	}

	// The long session: 200 steps (a step in, then two nexts), each
	// followed by what an editor asks at a stop.
	type sample struct {
		step              int
		rss, heap         uint64
		goroutines, funcs int
	}
	var samples []sample
	funcs := map[string]bool{}
	var stepMax, stopMax time.Duration
	stepMaxAt := ""
	measure := func(i int) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		samples = append(samples, sample{i, uint64(selfRSS(b)), ms.HeapInuse, runtime.NumGoroutine(), len(funcs)})
	}
	measure(0)
	longStart := time.Now()
	for i := 1; i <= 200; i++ {
		cmd := "next"
		if i%2 == 1 {
			cmd = "stepIn"
		}
		start := time.Now()
		if err := c.Step(cmd, thread, ""); err != nil {
			b.Fatalf("step %d: %v", i, err)
		}
		ev, err := c.Stopped()
		if err != nil {
			b.Fatalf("step %d: %v", i, err)
		}
		thread = ev.Body.ThreadId
		d := time.Since(start)
		start = time.Now()
		st, err := c.StackTrace(thread)
		if err != nil || len(st.Body.StackFrames) == 0 {
			b.Fatalf("stackTrace %d: %v", i, err)
		}
		f := st.Body.StackFrames[0]
		funcs[f.Name] = true
		if d > stepMax {
			stepMax, stepMaxAt = d, fmt.Sprintf("%s %d into %s", cmd, i, f.Name)
		}
		sc, err := c.Scopes(f.Id)
		if err != nil {
			b.Fatalf("scopes %d: %v", i, err)
		}
		for _, s := range sc.Body.Scopes {
			if s.Name == "Locals" || s.Name == "Arguments" {
				v, _ := c.Variables(s.VariablesReference)
				if v != nil {
					for _, x := range v.Body.Variables {
						if x.VariablesReference != 0 {
							c.Variables(x.VariablesReference)
						}
					}
				}
			}
		}
		stopMax = max(stopMax, time.Since(start))
		if f.Source == nil { // user space: back to the kernel
			c.Continue(thread)
			if ev, err := c.Stopped(); err == nil {
				thread = ev.Body.ThreadId
			}
		}
		if i%20 == 0 {
			measure(i)
		}
	}
	longTime := time.Since(longStart)
	// Many units: the lines of a few instructions of 600 functions spread
	// over the kernel's text (each in another compile unit, mostly), as
	// the disassembly view and stops all over the kernel decode them.
	out, err := exec.Command("nm", "-n", k.Vmlinux).Output()
	if err != nil {
		b.Fatal(err)
	}
	var text, data []string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) != 3 || strings.HasPrefix(f[2], "__") || strings.Contains(f[2], "."):
		case f[1] == "T" || f[1] == "t":
			text = append(text, f[0])
		case f[1] == "D" || f[1] == "d" || f[1] == "B" || f[1] == "b":
			data = append(data, f[2])
		}
	}
	sweepStart := time.Now()
	var sweepMax time.Duration
	files := map[string]bool{}
	for i := 1; i <= 600; i++ {
		start := time.Now()
		m, err := c.Request("disassemble", map[string]any{"memoryReference": "0x" + text[i*len(text)/601], "instructionCount": 8, "resolveSymbols": true})
		sweepMax = max(sweepMax, time.Since(start))
		if err == nil {
			for _, in := range m.(*dap.DisassembleResponse).Body.Instructions {
				if in.Location != nil {
					files[in.Location.Path] = true
				}
			}
		}
		if i%100 == 0 {
			measure(200 + i)
		}
	}
	sweepTime := time.Since(sweepStart)
	// Many types: 1200 globals spread over the kernel's data, each
	// evaluated and expanded (their units' types decoded).
	globStart := time.Now()
	var globMax time.Duration
	evaluated := 0
	for i := 1; i <= 1200; i++ {
		start := time.Now()
		m, err := c.Request("evaluate", map[string]any{"expression": data[i*len(data)/1201], "context": "watch"})
		if err == nil {
			evaluated++
			if r := m.(*dap.EvaluateResponse); r.Body.VariablesReference != 0 {
				c.Variables(r.Body.VariablesReference)
			}
		}
		globMax = max(globMax, time.Since(start))
		if i%200 == 0 {
			measure(800 + i)
		}
	}
	globTime := time.Since(globStart)
	if p := os.Getenv("VMDAP_HEAVY_HEAP"); p != "" { // where the heap is, after the sweeps
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		pprof.WriteHeapProfile(f)
		f.Close()
	}
	// The next stop: what the sweeps' references held goes.
	c.Continue(thread)
	if _, err := c.Stopped(); err != nil {
		b.Fatal(err)
	}
	measure(2001)
	// Last: a response over go-dap's 4 MiB message limit ends a go-dap
	// client's connection.
	c.Timeout = 30 * time.Second
	if m, err := req("readMemory kernel text", fmt.Sprint(16<<20, " B"), "readMemory", map[string]any{"memoryReference": "0xffffffff81000000", "count": 16 << 20}); err == nil {
		r := m.(*dap.ReadMemoryResponse).Body
		rows[len(rows)-1].note = fmt.Sprintf("%d base64 chars, unreadable %d", len(r.Data), r.UnreadableBytes)
	}
	c.Disconnect()
	p2.Close()
	p1.Close()
	<-done

	b.Logf("%-58s %-22s %10s %12s  %s", "request", "size", "time", "response B", "note")
	small0 := rows[0].d
	var slowest time.Duration
	biggest := 0
	for _, r := range rows {
		slowest, biggest = max(slowest, r.d), max(biggest, r.bytes)
	}
	b.ReportMetric(float64(slowest)/float64(small0), "slowest/small")
	b.ReportMetric(float64(biggest>>10), "biggest-response-KB")
	b.ReportMetric(float64(samples[len(samples)-1].heap>>20), "heap-after-MB")
	for _, r := range rows {
		b.Logf("%-58s %-22s %10s %12d  %s (%.0fx the small request)", r.req, r.size, r.d.Round(time.Microsecond), r.bytes, r.note, float64(r.d)/float64(small0))
	}
	b.Logf("long session: 200 steps in %v, slowest step %v (%s), slowest stop's requests %v, %d functions", longTime.Round(time.Millisecond), stepMax, stepMaxAt, stopMax, len(funcs))
	b.Logf("unit sweep: 600 disassembles of 8 instructions in %v (slowest %v), %d source files", sweepTime.Round(time.Millisecond), sweepMax.Round(time.Microsecond), len(files))
	b.Logf("global sweep: 1200 globals evaluated (%d had a value) and expanded in %v (slowest %v)", evaluated, globTime.Round(time.Millisecond), globMax.Round(time.Microsecond))
	for _, s := range samples {
		b.Logf("sample %3d: RSS %4d MB, heap in use %4d MB, %3d goroutines, %3d functions", s.step, s.rss>>20, s.heap>>20, s.goroutines, s.funcs)
	}
	b.Logf("goroutines before the session %d, after it %d", goroutines0, runtime.NumGoroutine())
}

// selfRSS reads this process's VmRSS.
func selfRSS(b *testing.B) int64 {
	out, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
			return kb << 10
		}
	}
	return 0
}

// discardLog is a logger that writes nothing.
func discardLog() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}
