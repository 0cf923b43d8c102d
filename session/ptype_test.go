package session

import (
	"os/exec"
	"strings"
	"testing"

	"vmdap/vmm/vmmtest"
)

// gdbTypes runs gdb's whatis, ptype or ptype/o on each argument in an
// ELF file and returns what it printed, by command line.
func gdbTypes(t *testing.T, path string, cmds []string) map[string]string {
	t.Helper()
	gdb, err := exec.LookPath("gdb")
	if err != nil {
		t.Skip("skipping: gdb is not installed (the expected types come from it)")
	}
	args := []string{"-batch", "-nx", "-ex", "set width 0", "-ex", "set height 0"}
	for _, c := range cmds {
		args = append(args, "-ex", "echo @@@\\n", "-ex", c)
	}
	out, err := exec.Command(gdb, append(args, path)...).CombinedOutput()
	if err != nil {
		t.Fatalf("gdb: %v\n%s", err, out)
	}
	parts := strings.Split(string(out), "@@@\n")[1:]
	if len(parts) != len(cmds) {
		t.Fatalf("gdb printed %d answers for %d commands:\n%s", len(parts), len(cmds), out)
	}
	m := map[string]string{}
	for i, c := range cmds {
		m[c] = strings.TrimSuffix(parts[i], "\n")
	}
	return m
}

// TestTypeCommandsMatchGDB: whatis, ptype and ptype/o print what gdb
// prints for the same ELF files: typedefs resolved by ptype and kept by
// whatis, struct and union bodies with anonymous members expanded,
// bitfields, flexible arrays, function pointers, enums with the values
// that do not follow, pointers to structs, and ptype/o's layout of
// offsets, bit offsets, holes, padding and nested members.
func TestTypeCommandsMatchGDB(t *testing.T) {
	typesMatchGDB(t, []typeCase{
		{vmmtest.BuildCorpus(t, "O0").Path, []string{"struct task", "struct pte_flags", "union word", "struct packet",
			"struct ops", "enum state", "init_task", "current", "pkt", "&init_task.flags", "file_ops", "init_task.comm",
			"refcount_t", "run_queue", "init_task.ops->open", "struct list_head"}},
		{vmmtest.BuildGuest(t, "values").Path, []string{"struct pt", "points", "enum perm", "enum sign", "sgn", "handler_t",
			"handlers", "ppt", "cvpp", "greeting", "vp_const", "grid", "u8", "cube"}},
	})
}

// TestTypeCommandsMatchGDBOnLinux: the same on Debian's vmlinux, whose
// structs nest anonymous unions and structs in bitfields, flexible
// arrays and function-pointer tables (task_struct, page, sk_buff).
func TestTypeCommandsMatchGDBOnLinux(t *testing.T) {
	l := vmmtest.RequireLinux(t)
	typesMatchGDB(t, []typeCase{{l.Vmlinux, []string{"struct task_struct", "struct page", "struct sk_buff", "struct list_head",
		"atomic_t", "struct file_operations", "init_task.thread", "init_task.mm", "struct rq", "jiffies_64", "struct printk_ringbuffer", "init_task.comm", "struct lockdep_map"}}})
}

type typeCase struct {
	path string
	args []string
}

func typesMatchGDB(t *testing.T, cases []typeCase) {
	t.Helper()
	for _, c := range cases {
		var cmds []string
		for _, a := range c.args {
			cmds = append(cmds, "whatis "+a, "ptype "+a, "ptype/o "+a)
		}
		want := gdbTypes(t, c.path, cmds)
		sc := newImageScope(t, c.path)
		for _, cmd := range cmds {
			verb, arg, _ := strings.Cut(cmd, " ")
			got, err := typeCommandIn(verb, arg, sc)
			if err != nil {
				t.Errorf("%s: %v", cmd, err)
				continue
			}
			if got != want[cmd] {
				t.Errorf("%s:\nvmdap:\n%s\ngdb:\n%s", cmd, got, want[cmd])
			}
		}
	}
}

// A struct that holds itself (only crafted DWARF can say so) is spelled
// out to a bounded depth, not for ever.
func TestPtypeSelfContainingStruct(t *testing.T) {
	s := &ctype{kind: tStruct, name: "struct loop", size: 8}
	s.fields = []field{{name: "self", typ: s}}
	out := typeCommandText("ptype/o", s)
	if n := strings.Count(out, "struct loop {"); n != maxTypeDepth+1 {
		t.Errorf("ptype/o spelled the struct out %d times", n)
	}
}
