package session

import (
	"fmt"
	"math/bits"
	"sort"
	"strings"
)

// The kernel's tasks: init_task heads the list of processes
// (task_struct.tasks), and each process lists its threads
// (signal->thread_head through thread_node since 6.7, thread_group
// before). Each CPU's running task is pcpu_hot.current_task (6.2+) or the
// per-CPU current_task; its idle task is its runqueue's idle (the boot
// CPU's is init_task itself).

// task is one kernel task as tasks lists it.
type task struct {
	addr    uint64
	pid     int // the thread's id
	tgid    int // the process's
	ppid    int
	comm    string
	state   string // ps's letter
	cpu     int
	current bool // running on its CPU now
	kthread bool // a kernel thread (PF_KTHREAD)
	parent  uint64
}

// taskLayout is what the walk reads of a task_struct.
type taskLayout struct {
	t       *ctype
	tasks   int64 // offset of the tasks list_head
	fields  []string
	state   string // __state (5.14+) or state
	cpu     string // thread_info.cpu or cpu
	threads string // "thread_node" or "thread_group" or ""
	thrOff  int64
}

func (k *kview) taskLayout() (*taskLayout, error) {
	t, err := k.typ("task_struct")
	if err != nil {
		return nil, err
	}
	l := &taskLayout{t: t}
	if l.tasks, err = k.off(t, "tasks"); err != nil {
		return nil, err
	}
	l.state = "__state"
	if !k.has(t, l.state) {
		l.state = "state"
	}
	l.cpu = "thread_info.cpu"
	if !k.has(t, l.cpu) {
		l.cpu = "cpu"
	}
	l.fields = []string{"pid", "tgid", "comm", l.state}
	for _, f := range []string{l.cpu, "exit_state", "flags", "real_parent"} {
		if k.has(t, f) {
			l.fields = append(l.fields, f)
		}
	}
	for _, f := range []string{"thread_node", "thread_group"} {
		if k.has(t, f) {
			l.threads = f
			l.thrOff, _ = k.off(t, f)
			break
		}
	}
	return l, nil
}

// readTask reads one task.
func (k *kview) readTask(l *taskLayout, addr uint64) (task, error) {
	o, err := k.object(addr, l.t, l.fields...)
	if err != nil {
		return task{}, err
	}
	tk := task{addr: addr, pid: int(int32(o.uint("pid"))), tgid: int(int32(o.uint("tgid"))), comm: o.text("comm"),
		cpu: int(o.uint(l.cpu)), kthread: o.uint("flags")&pfKthread != 0, parent: o.uint("real_parent")}
	tk.state = taskState(o.uint(l.state), o.uint("exit_state"))
	return tk, nil
}

// pfKthread is PF_KTHREAD, the kernel's mark of a kernel thread
// (include/linux/sched.h, the same value since 2.6.27; a #define, so not
// in the DWARF). A task without user memory (mm NULL) is not one: a user
// process that exited (a zombie) has none either, and a kernel thread
// that borrows a process's memory (kthread_use_mm) has some.
const pfKthread = 0x00200000

// taskState is the state letter of fs/proc/array.c's task_state_array,
// as include/linux/sched.h's __task_state_index picks it: (state |
// exit_state) & TASK_REPORT, by its highest bit; a state with all of
// TASK_IDLE's bits (TASK_UNINTERRUPTIBLE | TASK_NOLOAD, freezable or not)
// is I; a task waiting on an RT lock (TASK_RTLOCK_WAIT, 5.15+) or frozen
// (TASK_FROZEN, 6.1+: a suspend's freezer) is D. Kernels before those
// never set those bits.
func taskState(state, exit uint64) string {
	const taskReport, taskIdle, taskRTLockWait, taskFrozen = 0x7f, 0x402, 0x1000, 0x8000
	switch {
	case state&(taskRTLockWait|taskFrozen) != 0:
		return "D"
	case state&taskIdle == taskIdle:
		return "I"
	}
	s := (state | exit) & taskReport
	return string("RSDTtXZP"[bits.Len64(s)])
}

// maxTasks bounds the walks of the task lists.
const maxTasks = 1 << 20

// tasks walks every task: each process of init_task.tasks and its
// threads, then the other CPUs' idle tasks.
func (k *kview) tasks() ([]task, error) {
	l, err := k.taskLayout()
	if err != nil {
		return nil, err
	}
	init, err := k.sym("init_task")
	if err != nil {
		return nil, err
	}
	var out []task
	seen := map[uint64]bool{}
	add := func(addr uint64) error {
		if seen[addr] {
			return nil
		}
		seen[addr] = true
		tk, err := k.readTask(l, addr)
		if err != nil {
			return err
		}
		out = append(out, tk)
		return nil
	}
	var werr error
	procs := []uint64{init}
	err = k.list(init+uint64(l.tasks), maxTasks, func(node uint64) bool {
		procs = append(procs, node-uint64(l.tasks))
		return true
	})
	if err != nil {
		werr = err
	}
	// A task that cannot be read (a dump that lacks its page) ends the
	// walk, but not the rest: those read still get their parents' ids
	// and who runs where.
	for _, p := range procs {
		if err := add(p); err != nil {
			werr = err
			break
		}
		if err := k.threadsOf(l, p, add); err != nil && werr == nil {
			werr = err
		}
	}
	// The other CPUs' idle tasks are on no list.
	if rq, err := k.typ("rq"); err == nil && k.has(rq, "idle") {
		if rqs, err := k.sym("runqueues"); err == nil {
			n, _ := k.nrCPUs()
			for cpu := 0; cpu < n; cpu++ {
				off, err := k.perCPUOffset(cpu)
				if err != nil {
					break
				}
				o, err := k.object(k.perCPUAddr(rqs)+off, rq, "idle")
				if err != nil {
					break
				}
				if idle := o.uint("idle"); idle != 0 {
					_ = add(idle)
				}
			}
		}
	}
	// Who runs where, and parents' ids.
	byAddr := map[uint64]*task{}
	for i := range out {
		byAddr[out[i].addr] = &out[i]
	}
	for cpu, cur := range k.currentTasks() {
		if t := byAddr[cur]; t != nil && t.cpu == cpu {
			t.current = true
		}
	}
	for i := range out {
		if p := byAddr[out[i].parent]; p != nil && out[i].addr != init {
			out[i].ppid = p.tgid
		}
	}
	return out, werr
}

// threadsOf adds the threads of process p other than p itself.
func (k *kview) threadsOf(l *taskLayout, p uint64, add func(uint64) error) error {
	switch l.threads {
	case "thread_node":
		sigT, err := k.typ("signal_struct")
		if err != nil || !k.has(sigT, "thread_head") {
			return nil
		}
		o, err := k.object(p, l.t, "signal")
		if err != nil {
			return err
		}
		sig := o.uint("signal")
		if sig == 0 {
			return nil
		}
		off, _ := k.off(sigT, "thread_head")
		var aerr error
		err = k.list(sig+uint64(off), maxTasks, func(node uint64) bool {
			aerr = add(node - uint64(l.thrOff))
			return aerr == nil
		})
		if aerr != nil {
			return aerr
		}
		return err
	case "thread_group":
		var aerr error
		err := k.list(p+uint64(l.thrOff), maxTasks, func(node uint64) bool {
			aerr = add(node - uint64(l.thrOff))
			return aerr == nil
		})
		if aerr != nil {
			return aerr
		}
		return err
	}
	return nil
}

// currentTasks returns each CPU's running task (0 where unknown).
func (k *kview) currentTasks() []uint64 {
	n, err := k.nrCPUs()
	if err != nil {
		return nil
	}
	out := make([]uint64, n)
	for cpu := range out {
		out[cpu], _ = k.currentOn(cpu)
	}
	return out
}

// currentOn returns the task running on a CPU: pcpu_hot.current_task, or
// the per-CPU current_task of kernels before 6.2.
func (k *kview) currentOn(cpu int) (uint64, error) {
	off, err := k.perCPUOffset(cpu)
	if err != nil {
		return 0, err
	}
	a, err := k.currentVar()
	if err != nil {
		return 0, err
	}
	return k.u64(a + off)
}

// currentVar returns the per-CPU address (before a CPU's offset) of the
// current task pointer.
func (k *kview) currentVar() (uint64, error) {
	if hot, err := k.sym("pcpu_hot"); err == nil {
		if t, err := k.typ("pcpu_hot"); err == nil {
			if off, err := k.off(t, "current_task"); err == nil {
				return k.perCPUAddr(hot) + uint64(off), nil
			}
		}
	}
	a, err := k.sym("current_task")
	if err != nil {
		return 0, fmt.Errorf("the kernel has neither pcpu_hot.current_task nor current_task")
	}
	return k.perCPUAddr(a), nil
}

// tasksCommand lists the tasks as ps does.
func (s *Session) tasksCommand(v int) (string, error) {
	if !s.isLinux() {
		return "", errNotLinux
	}
	ts, err := s.kview(v).tasks()
	if len(ts) == 0 && err != nil {
		return "", err
	}
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].pid < ts[j].pid })
	var b strings.Builder
	fmt.Fprintf(&b, "%7s %7s %7s %s %4s  %-18s  %s\n", "PID", "TGID", "PPID", "S", "CPU", "TASK", "COMM")
	for _, t := range ts {
		comm := t.comm
		if t.kthread {
			comm = "[" + comm + "]"
		}
		if t.current {
			comm += "  (running)"
		}
		fmt.Fprintf(&b, "%7d %7d %7d %s %4d  %#-18x  %s\n", t.pid, t.tgid, t.ppid, t.state, t.cpu, t.addr, comm)
	}
	if err != nil {
		fmt.Fprintf(&b, "(the list is cut short: %v)\n", err)
	}
	return b.String(), nil
}
