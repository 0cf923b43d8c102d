package session

import (
	"errors"
	"fmt"
	"sort"

	"vmdap/vmm"
	"vmdap/x86"
)

// Tasks as threads (the TaskThreads option), as OpenOCD's RTOS awareness
// shows an embedded system's tasks: beside the vCPUs (threads 1..n), each
// task but the idle ones is a thread whose id is TaskThreadBase + its pid.
// A task running on a CPU shows that vCPU's state. A task that is not
// running was switched out in __switch_to_asm, which left a struct
// inactive_task_frame at its thread.sp (the callee-saved registers and
// the return address into __schedule, or ret_from_fork_asm for a task
// that never ran): its registers are those, with the stack pointer above
// the frame, and its stack unwinds from there with the kernel's CFI, as
// drgn does.
//
// The session reads such a thread as a virtual vCPU, numbered after the
// real ones: the target seen through taskTarget answers its registers
// from the frame, its segment registers and memory through a real vCPU
// that runs kernel code.

// TaskThreadBase is added to a pid to make a task's thread id.
const TaskThreadBase = 100000

// taskThreads is the tasks of the current stop, as threads.
type taskThreads struct {
	stale bool
	list  []taskThread // the sleeping tasks, by virtual vCPU (n + index)
	byPID map[int]int  // pid → virtual vCPU index, or the real vCPU of a running task
	names []Thread
}

// taskThread is one task shown as a thread.
type taskThread struct {
	task
	regs x86.Regs
	err  error // why its registers cannot be read
}

// Thread is one thread for the client.
type Thread struct {
	ID   int
	Name string
}

// ThreadList returns the threads: one per vCPU, then (with TaskThreads,
// when stopped) one per task.
func (s *Session) ThreadList() []Thread {
	n := s.t.VCPUs()
	out := make([]Thread, 0, n)
	s.mu.Lock()
	defer s.mu.Unlock()
	names := s.vcpuNames()
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("vCPU %d", i)
		if i < len(names) && names[i] != "" {
			name += ": " + names[i]
		}
		out = append(out, Thread{ID: i + 1, Name: name})
	}
	if !s.linux.opts.TaskThreads || s.state != StateStopped || !s.isLinux() {
		return out
	}
	s.refreshTaskThreads()
	return append(out, s.linux.tasks.names...)
}

// vcpuNames names each vCPU of a stopped Linux guest after the task it
// runs, as crash's CPU list and a process debugger's threads do:
// "swapper/0 (pid 0)", "[kworker/1:2] (pid 31)", "awk (pid 73, user
// mode)"; "" where it cannot be read (before the per-CPU areas are set
// up). Read once per stop. Session locked.
func (s *Session) vcpuNames() []string {
	if s.state != StateStopped || !s.isLinux() {
		return nil
	}
	if s.linux.vcpuNames != nil {
		return s.linux.vcpuNames
	}
	n := s.t.VCPUs()
	names := make([]string, n)
	s.linux.vcpuNames = names
	k := s.kview(s.curVCPU)
	l, err := k.taskLayout()
	if err != nil {
		return names
	}
	for v := 0; v < n; v++ {
		cpu, err := k.cpuOf(v)
		if err != nil {
			continue
		}
		cur, err := k.currentOn(cpu)
		if err != nil || cur == 0 {
			continue
		}
		t, err := k.readTask(l, cur)
		if err != nil || t.pid < 0 || !printable(t.comm) {
			continue // not a task (a slide not found yet reads elsewhere)
		}
		comm := t.comm
		if t.kthread && t.pid != 0 {
			comm = "[" + comm + "]"
		}
		user := ""
		if sr, err := s.t.SRegs(v); err == nil && sr.CS.Selector&3 == 3 {
			user = ", user mode"
		}
		names[v] = fmt.Sprintf("%s (pid %d%s)", comm, t.pid, user)
	}
	return names
}

// refreshTaskThreads reads the tasks once per stop.
func (s *Session) refreshTaskThreads() {
	tt := &s.linux.tasks
	if !tt.stale && tt.byPID != nil {
		return
	}
	tt.stale = false
	tt.list, tt.names, tt.byPID = nil, nil, map[int]int{}
	k := s.kview(s.curVCPU)
	ts, err := k.tasks()
	if err != nil {
		s.log.WithError(err).Debug("reading the tasks")
	}
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].pid < ts[j].pid })
	vcpuOfCPU := map[int]int{}
	for v := 0; v < s.t.VCPUs(); v++ {
		if cpu, err := k.cpuOf(v); err == nil {
			vcpuOfCPU[cpu] = v
		}
	}
	n := s.t.VCPUs()
	for _, t := range ts {
		if t.pid == 0 {
			continue // the CPUs' idle tasks: the vCPUs themselves
		}
		if _, dup := tt.byPID[t.pid]; dup {
			continue
		}
		comm := t.comm
		if t.kthread {
			comm = "[" + comm + "]"
		}
		name := fmt.Sprintf("pid %d: %s (%s)", t.pid, comm, t.state)
		if v, ok := vcpuOfCPU[t.cpu]; t.current && ok {
			tt.byPID[t.pid] = v
			name = fmt.Sprintf("pid %d: %s (%s, running on vCPU %d)", t.pid, comm, t.state, v)
		} else {
			th := taskThread{task: t}
			th.regs, th.err = k.switchedOut(t.addr)
			tt.byPID[t.pid] = n + len(tt.list)
			tt.list = append(tt.list, th)
		}
		tt.names = append(tt.names, Thread{ID: TaskThreadBase + t.pid, Name: name})
	}
}

// switchedOut returns the registers a task was switched out with, from
// the struct inactive_task_frame at its thread.sp.
func (k *kview) switchedOut(task uint64) (x86.Regs, error) {
	var r x86.Regs
	tt, err := k.typ("task_struct")
	if err != nil {
		return r, err
	}
	o, err := k.object(task, tt, "thread.sp")
	if err != nil {
		return r, err
	}
	sp := o.uint("thread.sp")
	ft, err := k.typ("inactive_task_frame")
	if err != nil {
		return r, err
	}
	f, err := k.object(sp, ft)
	if err != nil {
		return r, fmt.Errorf("the task's switch frame at %#x: %w", sp, err)
	}
	r.RSP = sp + uint64(ft.size)
	r.RIP = f.uint("ret_addr")
	for name, field := range map[string]string{"rbp": "bp", "rbx": "bx", "r12": "r12", "r13": "r13", "r14": "r14", "r15": "r15"} {
		if k.has(ft, field) {
			r.Set(name, f.uint(field))
		}
	}
	return r, nil
}

// taskThreadVCPU maps a task thread id to the vCPU index the session reads
// it as (a real one for a running task).
func (s *Session) taskThreadVCPU(thread int) (int, error) {
	pid := thread - TaskThreadBase
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.linux.opts.TaskThreads || s.state != StateStopped || !s.isLinux() {
		return 0, fmt.Errorf("no thread %d (task threads exist while the guest is stopped, with taskThreads on)", thread)
	}
	s.refreshTaskThreads()
	v, ok := s.linux.tasks.byPID[pid]
	if !ok {
		return 0, fmt.Errorf("no task with pid %d", pid)
	}
	return v, nil
}

// isTaskThread reports whether a thread id names a task.
func isTaskThread(thread int) bool { return thread > TaskThreadBase }

// taskTarget is the session's view of the target with the sleeping tasks
// as virtual vCPUs after the real ones.
type taskTarget struct {
	vmm.Target
	s *Session
}

// virtual returns the task of a virtual vCPU index.
func (t *taskTarget) virtual(v int) (*taskThread, bool) {
	n := t.Target.VCPUs()
	if v < n {
		return nil, false
	}
	l := t.s.linux.tasks.list
	if v-n >= len(l) {
		return &taskThread{err: fmt.Errorf("no vCPU %d", v)}, true
	}
	return &l[v-n], true
}

// real is the vCPU whose view of memory a task's reads use.
func (t *taskTarget) real() int { return t.s.kview(t.s.curVCPU).v }

func (t *taskTarget) Regs(v int) (x86.Regs, error) {
	if th, ok := t.virtual(v); ok {
		return th.regs, th.err
	}
	return t.Target.Regs(v)
}

func (t *taskTarget) SRegs(v int) (x86.SRegs, error) {
	if th, ok := t.virtual(v); ok {
		if th.err != nil {
			return x86.SRegs{}, th.err
		}
		return t.Target.SRegs(t.real())
	}
	return t.Target.SRegs(v)
}

func (t *taskTarget) ReadMemory(v int, p []byte, addr uint64) (int, error) {
	if _, ok := t.virtual(v); ok {
		v = t.real()
	}
	n, err := t.Target.ReadMemory(v, p, addr)
	return t.orPTI(v, p, addr, n, err, false)
}

func (t *taskTarget) WriteMemory(v int, p []byte, addr uint64) (int, error) {
	if _, ok := t.virtual(v); ok {
		v = t.real()
	}
	n, err := t.Target.WriteMemory(v, p, addr)
	return t.orPTI(v, p, addr, n, err, true)
}

// orPTI finishes an access that faulted at a kernel address the user half
// of a PTI page-table pair does not map (pti.go).
func (t *taskTarget) orPTI(v int, p []byte, addr uint64, n int, err error, write bool) (int, error) {
	var fault *vmm.FaultError
	if !errors.As(err, &fault) || n >= len(p) {
		return n, err
	}
	if m, ok := t.s.kernelPTI(v, p[n:], addr+uint64(n), write); ok && m > 0 {
		if n += m; n == len(p) {
			return n, nil
		}
		return n, &vmm.FaultError{Addr: addr + uint64(n), Write: write, Reason: "not mapped by the kernel's page tables either (page-table isolation)"}
	}
	return n, err
}

var errTaskStep = errors.New("a task that is not running cannot be stepped: step or continue a vCPU thread (a task runs when the scheduler picks it)")

// steppable refuses run control of a task thread whose task is not
// running on a vCPU.
func (s *Session) steppable(thread int) error {
	if !isTaskThread(thread) {
		return nil
	}
	v, err := s.vcpuOf(thread)
	if err != nil {
		return err
	}
	if v >= s.t.VCPUs() {
		return errTaskStep
	}
	return nil
}

// unwrap returns the backend's own target.
func (t *taskTarget) unwrap() vmm.Target { return t.Target }

// printable reports whether a task's comm is one: not empty, printable
// ASCII.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}
