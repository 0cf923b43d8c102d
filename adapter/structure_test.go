package adapter

import (
	"os/exec"
	"strings"
	"testing"
)

func TestErrorIDsUnique(t *testing.T) {
	seen := map[int]bool{}
	for _, id := range errorIDs {
		if seen[id] {
			t.Fatalf("error id %d used twice", id)
		}
		seen[id] = true
	}
}

// TestImportRules enforces the dependency direction main → adapter →
// session → vmm ← backends, with x86 as pure knowledge.
func TestImportRules(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found")
	}
	rules := map[string][]string{
		// The shipped binary: no test helper, no testing package.
		"vmdap":                         {"vmdap/adapter/daptest", "vmdap/vmm/vmmtest", "testing"},
		"vmdap/adapter":                 {"vmdap/vmm/kvm", "vmdap/vmm/gdbremote", "vmdap/vmm/core"},
		"vmdap/session":                 {"github.com/google/go-dap", "vmdap/adapter", "vmdap/vmm/kvm", "vmdap/vmm/gdbremote", "vmdap/vmm/core"},
		"vmdap/session/symbols":         {"vmdap/session", "vmdap/vmm", "vmdap/adapter", "github.com/sirupsen/logrus"},
		"vmdap/vmm":                     {"vmdap/session", "vmdap/adapter", "golang.org/x/sys/unix"},
		"vmdap/vmm/kvm":                 {"vmdap/session", "vmdap/adapter", "github.com/google/go-dap"},
		"vmdap/vmm/kvm/internal/kvmsys": {"vmdap/vmm", "github.com/sirupsen/logrus"},
		"vmdap/vmm/gdbremote":           {"vmdap/session", "vmdap/adapter", "github.com/google/go-dap", "vmdap/vmm/kvm"},
		"vmdap/vmm/gdbremote/rsp":       {"vmdap/vmm", "vmdap/x86", "vmdap/session", "vmdap/adapter", "github.com/google/go-dap"},
		"vmdap/vmm/core":                {"vmdap/session", "vmdap/adapter", "github.com/google/go-dap", "vmdap/vmm/kvm", "vmdap/vmm/gdbremote"},
		"vmdap/vmm/vmmtest":             {"vmdap/session", "vmdap/adapter", "github.com/google/go-dap"},
		"vmdap/x86":                     {"vmdap/vmm", "vmdap/session", "vmdap/adapter"},
		"vmdap/x86/paging":              {"vmdap/vmm", "vmdap/session", "vmdap/adapter", "golang.org/x/arch"},
		"vmdap/x86/disasm":              {"vmdap/vmm", "vmdap/session", "vmdap/adapter"},
	}
	for pkg, forbidden := range rules {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		for _, d := range deps {
			if d == pkg {
				continue
			}
			for _, f := range forbidden {
				if d == f || (strings.HasPrefix(d, f+"/") && !strings.HasPrefix(pkg, f+"/")) {
					t.Errorf("%s must not import %s (it does, via its dependencies)", pkg, d)
				}
			}
		}
	}
	// Direct imports: the adapter uses no disassembler and no syscalls,
	// and asks the session, not the symbol layer under it; the session
	// asks x86/disasm, not x86asm under it; only vmm/kvm makes syscalls
	// (logrus brings x/sys/unix to everyone, so this is a direct rule).
	direct := map[string][]string{
		"vmdap/adapter":           {"golang.org/x/arch/x86/x86asm", "golang.org/x/sys/unix", "vmdap/session/symbols"},
		"vmdap/session":           {"golang.org/x/arch/x86/x86asm", "golang.org/x/sys/unix"},
		"vmdap/vmm/gdbremote":     {"golang.org/x/sys/unix"},
		"vmdap/vmm/gdbremote/rsp": {"golang.org/x/sys/unix"},
		"vmdap/vmm/core":          {"golang.org/x/sys/unix"},
	}
	for pkg, forbidden := range direct {
		out, err := exec.Command("go", "list", "-f", "{{join .Imports \"\\n\"}}", pkg).Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if d == f {
					t.Errorf("%s imports %s directly", pkg, d)
				}
			}
		}
	}
	// Only vmm/kvm (and its kvmsys) may use unsafe among vmdap packages.
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "vmdap/vmm/kvm") {
			continue
		}
		for _, imp := range f[1:] {
			if imp == "unsafe" {
				t.Errorf("%s imports unsafe; only vmm/kvm may", f[0])
			}
		}
	}
}
