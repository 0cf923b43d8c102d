package session

import (
	"fmt"
	"strings"
	"testing"

	"vmdap/vmm/vmmtest"
)

// TestKernelDataMatchesGDB: the initialised data of Debian's vmlinux
// (init_task, init_mm, the protocol and file-system tables, the
// resources, the namespaces), member by member down three levels,
// reads as gdb reads it from the same file: bitfields anywhere in a
// struct, anonymous unions, enums, pointers to data and to functions,
// char arrays.
func TestKernelDataMatchesGDB(t *testing.T) {
	l := vmmtest.RequireLinux(t)
	sc := newImageScope(t, l.Vmlinux)
	roots := []string{"init_task", "init_mm", "init_fs", "init_files", "init_nsproxy", "init_uts_ns", "tcp_prot",
		"udp_prot", "ext4_fs_type", "init_cred", "init_signals", "init_sighand", "init_pid_ns", "init_user_ns",
		"def_blk_fops", "ext4_file_operations", "pci_bus_type", "ioport_resource", "iomem_resource", "init_net",
		"root_user", "init_ipc_ns", "init_time_ns", "init_cgroup_ns", "cpu_subsys", "tcp_hashinfo", "ext4_sops"}
	var exprs []string
	for _, r := range roots {
		v, err := evalExpr(r, sc)
		if err != nil {
			t.Errorf("%s: %v", r, err)
			continue
		}
		n := len(exprs)
		exprs = scalarLeaves(v.typ, r, 0, exprs)
		if len(exprs)-n > 400 {
			exprs = exprs[:n+400]
		}
	}
	want := vmmtest.GDBPrint(t, l.Vmlinux, exprs)
	bad := 0
	for _, e := range exprs {
		w := want[e]
		if strings.HasPrefix(w.Text, "0x0 <") {
			// A null pointer: gdb names address 0 by the per-CPU symbol
			// there (fixed_percpu_data, in the per-CPU section at 0);
			// vmdap names no null pointer.
			w.Text = "0x0"
		}
		v, err := evalExpr(e, sc)
		if err != nil {
			t.Errorf("%s: %v (gdb %s)", e, err, w.Text)
			bad++
			continue
		}
		if got := format(v, sc, false); comparable(got, v.typ) != comparable(w.Text, v.typ) {
			t.Errorf("%s = %s, gdb %s", e, got, w.Text)
			bad++
		}
		if bad > 40 {
			t.Fatal("too many differences")
		}
	}
	t.Logf("%d members of %d globals compared", len(exprs), len(roots))
}

// scalarLeaves lists the expressions of t's scalar members under expr:
// struct and union members (an anonymous one's through its parent, as
// C names them), the first two elements of arrays, to three levels.
func scalarLeaves(t *ctype, expr string, depth int, out []string) []string {
	switch t.kind {
	case tStruct:
		if depth >= 3 {
			return out
		}
		for _, f := range t.fields {
			if f.typ == nil {
				continue
			}
			if f.name == "" {
				out = scalarLeaves(f.typ, expr, depth+1, out)
				continue
			}
			out = scalarLeaves(f.typ, expr+"."+f.name, depth+1, out)
		}
	case tArray:
		if depth >= 3 || t.el() == nil {
			return out
		}
		if t.el().kind == tChar {
			return append(out, expr)
		}
		for i := int64(0); i < min(t.count, 2); i++ {
			out = scalarLeaves(t.el(), fmt.Sprintf("%s[%d]", expr, i), depth+1, out)
		}
	case tInt, tChar, tBool, tEnum, tPtr, tFloat:
		out = append(out, expr)
	}
	return out
}
