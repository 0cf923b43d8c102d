// Package session turns a debugger user's intentions into the mechanisms
// of a vmm.Target: it owns the debug state machine (stopped, running,
// exited), the goroutine that resumes the guest, logical breakpoints
// (source lines, functions, instructions, data, exception filters) and the
// physical breakpoints and watchpoints behind them, conditions, hit counts
// and logpoints, line and instruction stepping (step over and step out by
// temporary breakpoints, never by stepping through a call), stack
// unwinding, variables, expression evaluation (C's integer rules, hex
// display), the registers (general, segment, control, debug, x87 and
// SSE) and a stepped-out function's return value, memory and
// disassembly, jumps (goto), step-into targets, completions and the
// debug-console commands (x/, xp/, gva2gpa, whatis, ptype), and,
// for a Linux kernel, what is read from the kernel's own data structures
// (linux*.go): the kernel log, tasks (also as threads), loaded modules
// with their symbols, per-CPU data in expressions.
//
// It knows nothing of DAP: the adapter package translates requests into
// calls here and the Events sent here into DAP events. Threads are vCPUs,
// numbered from 1 (vCPU 0 is thread 1), then with taskThreads a Linux
// guest's tasks (TaskThreadBase + pid). Run control is all-stop.
package session
