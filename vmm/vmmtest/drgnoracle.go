package vmmtest

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The drgn oracle: what drgn (Debian's python3-drgn, a kernel debugger
// that shares no code with vmdap) reads of a Linux guest's memory, from an
// ELF core QEMU wrote at a stop (dump-guest-memory, with -device
// vmcoreinfo and the guest's qemu_fw_cfg module loaded, which hands QEMU
// the kernel's VMCOREINFO: drgn finds the kernel's page tables and KASLR
// offset there). Tests compare vmdap's Linux awareness at the same stop
// with it, so that no expected value is written by hand.

//go:embed drgnoracle.py
var drgnScript string

// drgnPython is Debian's python3, which python3-drgn installs drgn for
// (a python3 first on PATH may be another one).
const drgnPython = "/usr/bin/python3"

// RequireDrgn skips the test unless drgn can be imported by drgnPython.
func RequireDrgn(t testing.TB) {
	t.Helper()
	if err := exec.Command(drgnPython, "-c", "import drgn.helpers.linux").Run(); err != nil {
		t.Skipf("skipping: drgn is not installed for %s (%v; apt-get install python3-drgn, as .ci/run does)", drgnPython, err)
	}
}

// DrgnLinux is what drgn read of a kernel's core dump.
type DrgnLinux struct {
	CPUs []struct {
		CPU         int    `json:"cpu"`
		NrRunning   uint64 `json:"nr_running"`
		CurrPID     int    `json:"curr_pid"` // the runqueue's curr
		Current     uint64 `json:"current"`  // what the kernel's current reads (pcpu_hot.current_task)
		CurrentPID  int    `json:"current_pid"`
		CurrentComm string `json:"current_comm"`
		// SystemWQPwq is *per_cpu_ptr(system_wq->cpu_pwq, cpu), a
		// dynamically allocated per-CPU pointer's value on the CPU.
		SystemWQPwq uint64 `json:"system_wq_pwq"`
	} `json:"cpus"`
	Tasks   []DrgnTask   `json:"tasks"`
	Log     []DrgnRecord `json:"log"`
	Modules []DrgnModule `json:"modules"`
	Mounts  []DrgnMount  `json:"mounts"`
	// IOMem and IOPorts are /proc/iomem's and /proc/ioports' lines.
	IOMem   []string `json:"iomem"`
	IOPorts []string `json:"ioports"`
	Jiffies uint64   `json:"jiffies"`
	NrCPUs  int      `json:"nr_cpu_ids"`
	Banner  string   `json:"banner"`
	Cmdline string   `json:"cmdline"`
	// InitComm is init_task.comm.
	InitComm string `json:"init_comm"`
	// VCPUUser says, per vCPU, whether it was in user mode (its CS's RPL,
	// from the core's NT_PRSTATUS notes).
	VCPUUser []bool `json:"vcpu_user"`
	// Errors names the parts drgn could not read (by JSON name) and why;
	// those parts are empty.
	Errors map[string]string `json:"errors"`
}

// DrgnTask is one task: those of the PID namespace (for_each_task) and
// each CPU's idle task.
type DrgnTask struct {
	Addr    uint64 `json:"addr"`
	PID     int    `json:"pid"`
	TGID    int    `json:"tgid"`
	PPID    int    `json:"ppid"`  // real_parent's tgid, as /proc's PPid
	State   string `json:"state"` // task_state_to_char
	CPU     int    `json:"cpu"`   // task_cpu
	Comm    string `json:"comm"`
	Kthread bool   `json:"kthread"` // PF_KTHREAD
	Running bool   `json:"running"` // some CPU's current
	// Stack is the stack of a task not running, innermost first.
	Stack []DrgnFrame `json:"stack"`
}

// DrgnFrame is a frame of a task's stack.
type DrgnFrame struct {
	Name   string `json:"name"`
	PC     uint64 `json:"pc"`
	Inline bool   `json:"inline"`
}

// DrgnRecord is one printk record (get_printk_records).
type DrgnRecord struct {
	Seq   uint64 `json:"seq"`
	TS    uint64 `json:"ts"` // nanoseconds
	Level int    `json:"level"`
	Text  string `json:"text"`
}

// DrgnModule is one loaded module as /proc/modules shows it.
type DrgnModule struct {
	Addr  uint64   `json:"addr"` // struct module
	Name  string   `json:"name"`
	State string   `json:"state"` // LIVE, COMING, GOING, UNFORMED
	Base  uint64   `json:"base"`  // its code
	Size  uint64   `json:"size"`
	Refs  int      `json:"refs"`
	Users []string `json:"users"`
}

// DrgnMount is one mount of the initial namespace.
type DrgnMount struct {
	Addr uint64 `json:"addr"` // struct mount
	Dev  string `json:"dev"`
	Dir  string `json:"dir"`
	Type string `json:"type"`
}

// DrgnRead runs drgn on a core dump with the kernel's vmlinux.
func DrgnRead(t testing.TB, core, vmlinux string) DrgnLinux {
	t.Helper()
	d, err := DrgnTryRead(t, core, vmlinux)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// DrgnTryRead is DrgnRead returning drgn's failure as an error.
func DrgnTryRead(t testing.TB, core, vmlinux string) (DrgnLinux, error) {
	t.Helper()
	script := filepath.Join(t.TempDir(), "drgnoracle.py")
	if err := os.WriteFile(script, []byte(drgnScript), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, drgnPython, script, core, vmlinux)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var d DrgnLinux
	if err != nil {
		return d, fmt.Errorf("drgn on %s: %w\n%s", core, err, stderr.String())
	}
	if err := json.Unmarshal(out, &d); err != nil {
		return d, fmt.Errorf("drgn's output: %w\n%.2000s\n%s", err, out, stderr.String())
	}
	return d, nil
}
