package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-dap"

	"vmdap/vmm/vmmtest"
)

// TestLinuxCoreBuildIDMismatch opens a dump of Debian's kernel with a
// vmlinux whose build ID is another's (the same file with its
// NT_GNU_BUILD_ID changed, as a rebuilt kernel's would be): the session
// must say that the program is not the dumped kernel (the dump's
// VMCOREINFO records its BUILD-ID), and say nothing with the right one.
func TestLinuxCoreBuildIDMismatch(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	core := linuxCore(t, k, "console=ttyS0 panic=-1 nokaslr", "")(true)
	defer os.Remove(core)
	b, err := os.ReadFile(k.Vmlinux)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(core)
	if err != nil {
		t.Fatal(err)
	}
	info := make([]byte, 1<<20) // the notes come first
	n, _ := f.ReadAt(info, 0)
	f.Close()
	info = info[:n]
	i := bytes.Index(info, []byte("BUILD-ID="))
	if i < 0 {
		t.Fatal("the dump's VMCOREINFO has no BUILD-ID")
	}
	id, err := hex.DecodeString(string(info[i+9 : i+9+40]))
	info = nil
	if err != nil {
		t.Fatal(err)
	}
	j := bytes.Index(b, id)
	if j < 0 {
		t.Fatalf("the vmlinux does not hold the dump's build ID %x", id)
	}
	for n := range id {
		b[j+n] ^= 0xff
	}
	other := filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(other, b, 0o644); err != nil {
		t.Fatal(err)
	}
	b = nil
	for _, tc := range []struct {
		program string
		warn    bool
	}{{other, true}, {k.Vmlinux, false}} {
		c, _ := coreSession(t, core, map[string]any{"program": tc.program})
		out := c.Output("console")
		warned := strings.Contains(out, "WARNING: the dump's kernel (build ID "+hex.EncodeToString(id)+") is not the program's")
		if warned != tc.warn {
			t.Errorf("program %s: the debug console at the start:\n%s\nwant a warning that the build IDs differ: %v", tc.program, out, tc.warn)
		}
		mustOK(t, c.Disconnect())
	}
}

// TestLinuxCoreSetVariableRefused changes variables and registers of a
// Linux dump: each setVariable must be refused as the writeMemory and
// setExpression of a core dump are, saying it is a core dump (it said
// "this target cannot write registers", "registers can only be changed
// in the innermost frame" or "upid cannot be changed", as if another
// frame, or another variable, could be).
func TestLinuxCoreSetVariableRefused(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	core := linuxCore(t, k, "console=ttyS0 panic=-1 nokaslr", "")(false)
	defer os.Remove(core)
	c, _ := coreSession(t, core, map[string]any{"program": k.Vmlinux})
	const want = "this is a core dump"
	tried := 0
	try := func(what string, ref int, name string) {
		t.Helper()
		tried++
		_, err := c.Request("setVariable", map[string]any{"variablesReference": ref, "name": name, "value": "1"})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("setVariable %s: %v, want it refused with %q", what, err, want)
		}
	}
	// pid 1's frames (asleep in wait4): the innermost's and outer ones'
	// locals and arguments, in registers and in memory.
	st, err := c.StackTrace(100001)
	mustOK(t, err)
	for _, f := range st.Body.StackFrames[:min(8, len(st.Body.StackFrames))] {
		sc, err := c.Scopes(f.Id)
		mustOK(t, err)
		for _, s := range sc.Body.Scopes {
			if s.Name != "Locals" && s.Name != "Arguments" {
				continue
			}
			vs, err := c.Variables(s.VariablesReference)
			mustOK(t, err)
			for _, v := range vs.Body.Variables {
				try(f.Name+" "+v.Name, s.VariablesReference, v.Name)
			}
		}
	}
	// A register of vCPU 0's innermost frame.
	st, err = c.StackTrace(1)
	mustOK(t, err)
	sc, err := c.Scopes(st.Body.StackFrames[0].Id)
	mustOK(t, err)
	for _, s := range sc.Body.Scopes {
		if s.Name != "Registers" {
			continue
		}
		groups, err := c.Variables(s.VariablesReference)
		mustOK(t, err)
		regs, err := c.Variables(groups.Body.Variables[0].VariablesReference)
		mustOK(t, err)
		try("register "+regs.Body.Variables[0].Name, groups.Body.Variables[0].VariablesReference, regs.Body.Variables[0].Name)
	}
	if tried < 5 {
		t.Errorf("tried %d variables, want pid 1's locals and arguments and a register", tried)
	}
	mustOK(t, c.Disconnect())
}

// TestLinuxCoreTruncated opens dumps of Debian's kernel cut short, as a
// copy or a write that did not finish leaves them: QEMU's ELF core (whose
// section names come last), its flattened compressed kdump, and the
// compressed kdump makedumpfile -R makes of it. Each must open, say at
// the start that it is truncated, and answer a read of memory past the
// file's end saying so (an ELF core said "not an ELF core file: EOF" and
// did not open; a kdump opened as if whole, and its reads failed with
// "EOF").
func TestLinuxCoreTruncated(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	dump := linuxCoreAs(t, k, "console=ttyS0 panic=-1 nokaslr", "")
	elfCore := dump(`"paging":false`)
	flat := dump(`"paging":false,"format":"kdump-zlib"`)
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.kdump")
	if bin, err := exec.LookPath("makedumpfile"); err == nil {
		in, err := os.Open(flat)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-R", plain)
		cmd.Stdin = in
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("makedumpfile -R: %v\n%s", err, out)
		}
		in.Close()
	} else {
		plain = ""
	}
	cut := func(core string) string {
		t.Helper()
		st, err := os.Stat(core)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, filepath.Base(core)+".cut")
		if err := exec.Command("sh", "-c", fmt.Sprintf("head -c %d %s >%s", st.Size()/2, core, out)).Run(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, core := range []string{elfCore, flat, plain} {
		if core == "" {
			continue
		}
		short := cut(core)
		c, _ := coreSession(t, short, map[string]any{"program": k.Vmlinux})
		if out := c.Output("console"); !strings.Contains(out, "truncated") {
			t.Errorf("%s cut in half: the debug console at the start:\n%s\nwant it said truncated", core, out)
		}
		// 240 MiB of RAM, past the end of each file, by the
		// direct map.
		m, err := c.Request("readMemory", map[string]any{"memoryReference": "0xffff88800f000000", "count": 16})
		mustOK(t, err)
		if r := m.(*dap.ReadMemoryResponse).Body; r.Data != "" || r.UnreadableBytes != 16 {
			t.Errorf("%s cut in half: readMemory at the end of RAM: %+v, want 16 unreadable bytes", core, r)
		}
		if _, err := c.Request("evaluate", map[string]any{"expression": "*(long *)0xffff88800f000000", "context": "watch"}); err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("%s cut in half: a read at the end of RAM: %v, want an error that says the file is truncated", core, err)
		}
		mustOK(t, c.Disconnect())
	}
}

// TestLinuxCoreNoPagingUnmapped reads, in a vCPU's user-mode frame, an
// address below the end of RAM that its process does not map, in QEMU's
// dumps with and without paging of the same moment: both must say it is
// not mapped, as the page tables (and gva2gpa) say. The dump without
// paging gives each segment its physical address as p_vaddr, which read
// the physical memory there as if the process mapped it (drgn, which
// does not walk the CPU's page tables for a read, reads it too).
func TestLinuxCoreNoPagingUnmapped(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	dump := linuxCore(t, k, "console=ttyS0 panic=-1 nokaslr", "$B awk 'BEGIN { while (1) {} }' &\n$B sleep 1")
	for _, paging := range []bool{true, false} {
		core := dump(paging)
		c, _ := coreSession(t, core, map[string]any{"program": k.Vmlinux})
		user := 0
		for v := 1; v <= 2; v++ {
			st, err := c.StackTrace(v)
			mustOK(t, err)
			f := st.Body.StackFrames[0]
			if parseU(f.InstructionPointerReference) >= 0xffff800000000000 {
				continue // in the kernel
			}
			user++
			// 32 MiB: in RAM (the kernel's image), and far from a
			// static busybox's code, data and heap and its stack.
			for _, expr := range []string{"*(long *)0x2000000", "gva2gpa 0x2000000"} {
				_, err := c.Request("evaluate", map[string]any{"expression": expr, "frameId": f.Id, "context": "repl"})
				if err == nil || !strings.Contains(err.Error(), "not mapped") {
					t.Errorf("paging %v, vCPU %d in user mode: %s: %v, want it not mapped", paging, v-1, expr, err)
				}
			}
		}
		mustOK(t, c.Disconnect())
		os.Remove(core)
		if user == 0 {
			t.Skipf("skipping: paging %v: no vCPU in user mode at the dump (the spinner was in the kernel)", paging)
		}
	}
}
