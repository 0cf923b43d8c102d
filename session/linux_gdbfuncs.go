package session

import (
	"fmt"
	"slices"
	"strings"
)

// gdb's convenience functions for Linux (the kernel's scripts/gdb), for
// the users who type them from habit or from the kernel's documentation:
//
//	$lx_current([cpu])               the task running on cpu (the frame's CPU): *current
//	$lx_per_cpu(var[, cpu])          per_cpu(var, cpu), or this_cpu(var); var may be
//	                                 its name in quotes, as older scripts took it
//	$lx_per_cpu_ptr(ptr[, cpu])      per_cpu_ptr(ptr, cpu), or this_cpu_ptr(ptr)
//	$container_of(ptr, "type", "member")
//	                                 container_of(ptr, type, member): a type *
//	$lx_task_by_pid(pid)             the task_struct of a pid
//	$lx_thread_info(task)            a task's struct thread_info
//	$lx_thread_info_by_pid(pid)      likewise, by pid
//	$lx_module("name")               a loaded module's struct module
//
// They evaluate as vmdap's own idioms (linux_expr.go) do, without gdb or
// its Python.

// gdbFunction parses the arguments of $name(…) and calls it.
func (p *parser) gdbFunction(name string) (value, error) {
	p.next() // (
	var args []value
	var strs []string
	for !p.isOp(")") {
		if len(args) > 0 {
			if err := p.expect(","); err != nil {
				return value{}, fmt.Errorf("$%s: %w", name, err)
			}
		}
		s := ""
		if t := p.peek(); t.kind == "str" {
			s = t.text
		}
		v, err := p.ternary()
		if err != nil {
			return value{}, err
		}
		args, strs = append(args, v), append(strs, s)
		if len(args) > 3 {
			return value{}, fmt.Errorf("$%s: too many arguments", name)
		}
	}
	p.next() // )
	f, ok := gdbFunctions[name]
	if !ok {
		return value{}, fmt.Errorf("no convenience function $%s (vmdap has %s)", name, strings.Join(gdbFunctionNames(), ", "))
	}
	if len(args) < f.min || len(args) > f.max {
		return value{}, fmt.Errorf("$%s takes %s", name, f.usage)
	}
	if p.staticLinux() { // a condition being checked: values of their types
		switch name {
		case "lx_current", "lx_task_by_pid":
			return p.staticObject("task_struct")
		case "lx_thread_info_by_pid":
			return p.staticObject("thread_info")
		case "lx_module":
			return p.staticObject("module")
		}
		return f.call(p, args, strs) // (the per-CPU ones check themselves; container_of and thread_info read nothing)
	}
	if _, _, err := p.linuxScope(); err != nil {
		return value{}, fmt.Errorf("$%s: %w", name, err)
	}
	return f.call(p, args, strs)
}

// gdbFunc is one convenience function: its arguments' count and usage,
// and how it evaluates (strs[i] is args[i]'s text when it was a string
// literal).
type gdbFunc struct {
	min, max int
	usage    string
	call     func(p *parser, args []value, strs []string) (value, error)
}

var gdbFunctions = map[string]gdbFunc{
	"lx_current": {0, 1, "([cpu])", func(p *parser, args []value, _ []string) (value, error) {
		if len(args) == 0 {
			cur, ok, err := p.builtinName("current")
			if !ok || err != nil {
				return value{}, err
			}
			return deref(cur, p.sc)
		}
		_, k, _ := p.linuxScope()
		cpu, err := args[0].u64(p.sc)
		if err != nil {
			return value{}, err
		}
		a, err := k.currentOn(int(int64(cpu)))
		if err != nil {
			return value{}, err
		}
		return k.taskValue(a)
	}},
	"lx_per_cpu":     {1, 2, "(var[, cpu])", func(p *parser, a []value, s []string) (value, error) { return p.gdbPerCPU(a, s, false) }},
	"lx_per_cpu_ptr": {1, 2, "(ptr[, cpu])", func(p *parser, a []value, s []string) (value, error) { return p.gdbPerCPU(a, s, true) }},
	"container_of": {3, 3, `(ptr, "type", "member")`, func(p *parser, args []value, strs []string) (value, error) {
		if strs[1] == "" || strs[2] == "" {
			return value{}, fmt.Errorf(`$container_of(ptr, "type", "member"): the type and the member are strings`)
		}
		sub, err := subParser(p, strs[1])
		if err != nil {
			return value{}, err
		}
		ct, ok := sub.typeName()
		if !ok || sub.peek().kind != "eof" {
			return value{}, fmt.Errorf("$container_of: no type %q", strs[1])
		}
		if ct.kind == tPtr { // gdb's scripts take "struct x" and make it a pointer; accept "struct x *" too
			ct = ct.el()
		}
		if sub, err = subParser(p, strs[2]); err != nil {
			return value{}, err
		}
		path, err := sub.designator()
		if err != nil || sub.peek().kind != "eof" {
			return value{}, fmt.Errorf("$container_of: bad member %q", strs[2])
		}
		return containerOfValue(p.sc, args[0], ct, path)
	}},
	"lx_task_by_pid": {1, 1, "(pid)", func(p *parser, args []value, _ []string) (value, error) {
		_, k, _ := p.linuxScope()
		a, err := taskByPid(p, k, args[0])
		if err != nil {
			return value{}, err
		}
		return k.taskValue(a)
	}},
	"lx_thread_info": {1, 1, "(task)", func(p *parser, args []value, _ []string) (value, error) {
		t := args[0]
		if t.typ.kind == tPtr {
			var err error
			if t, err = deref(t, p.sc); err != nil {
				return value{}, err
			}
		}
		if t.typ.kind != tStruct || !strings.HasSuffix(t.typ.name, "task_struct") {
			return value{}, fmt.Errorf("$lx_thread_info needs a task_struct, not %s", t.typ)
		}
		return p.threadInfo(t)
	}},
	"lx_thread_info_by_pid": {1, 1, "(pid)", func(p *parser, args []value, _ []string) (value, error) {
		_, k, _ := p.linuxScope()
		a, err := taskByPid(p, k, args[0])
		if err != nil {
			return value{}, err
		}
		t, err := k.taskValue(a)
		if err != nil {
			return value{}, err
		}
		return p.threadInfo(t)
	}},
	"lx_module": {1, 1, `("name")`, func(p *parser, args []value, strs []string) (value, error) {
		if strs[0] == "" {
			return value{}, fmt.Errorf(`$lx_module("name"): the name is a string`)
		}
		_, k, _ := p.linuxScope()
		mods, err := k.modules()
		if err != nil {
			return value{}, err
		}
		for _, m := range mods {
			if m.name == strs[0] {
				mt, err := k.typ("module")
				if err != nil {
					return value{}, err
				}
				return value{typ: mt, inMem: true, addr: m.addr, name: fmt.Sprintf("$lx_module(%q)", m.name)}, nil
			}
		}
		return value{}, fmt.Errorf("no module %q is loaded", strs[0])
	}},
}

// gdbFunctionNames lists the convenience functions, sorted.
func gdbFunctionNames() []string {
	var names []string
	for n := range gdbFunctions {
		names = append(names, "$"+n)
	}
	slices.Sort(names)
	return names
}

// gdbPerCPU is $lx_per_cpu and $lx_per_cpu_ptr: the variable, or its
// name as a string.
func (p *parser) gdbPerCPU(args []value, strs []string, ptr bool) (value, error) {
	v := args[0]
	if strs[0] != "" {
		got, ok, err := p.sc.lookupVar(strs[0])
		if err != nil {
			return value{}, err
		}
		if !ok {
			return value{}, fmt.Errorf("no variable %q", strs[0])
		}
		v = got
	}
	var cpu *value
	if len(args) > 1 {
		cpu = &args[1]
	}
	return p.perCPUOf(v, cpu, ptr)
}

// threadInfo is a task's struct thread_info: its first member where the
// kernel keeps it in the task (x86-64 always does).
func (p *parser) threadInfo(t value) (value, error) {
	f, ok := t.typ.fieldByName("thread_info")
	if !ok {
		return value{}, fmt.Errorf("this kernel keeps thread_info out of task_struct (on the task's stack), which vmdap does not read")
	}
	return fieldValue(t, f, nil), nil
}

// taskValue is the task_struct at addr.
func (k *kview) taskValue(addr uint64) (value, error) {
	tt, err := k.typ("task_struct")
	if err != nil {
		return value{}, err
	}
	return value{typ: tt, inMem: true, addr: addr, name: fmt.Sprintf("*(struct task_struct *)%#x", addr)}, nil
}

// taskByPid finds the task (a thread) of a pid.
func taskByPid(p *parser, k *kview, pidv value) (uint64, error) {
	pid, err := pidv.u64(p.sc)
	if err != nil {
		return 0, err
	}
	ts, err := k.tasks() // a list cut short may still hold pid
	for _, t := range ts {
		if uint64(t.pid) == pid {
			return t.addr, nil
		}
	}
	if err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no task of pid %d", int64(pid))
}

// subParser parses text (a string argument's) in p's scope.
func subParser(p *parser, text string) (*parser, error) {
	toks, err := lex(text)
	if err != nil {
		return nil, err
	}
	return &parser{toks: toks, sc: p.sc, depth: p.depth}, nil
}
