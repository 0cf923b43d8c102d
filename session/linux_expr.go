package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The kernel's idioms in expressions, as the kernel's C and its gdb
// scripts spell them:
//
//	per_cpu(var, cpu)          var in CPU cpu's area (&var + __per_cpu_offset[cpu])
//	per_cpu_ptr(ptr, cpu)      a per-CPU pointer moved to CPU cpu's area
//	this_cpu(var)              var in the area of the CPU the frame's vCPU runs as
//	this_cpu_ptr(ptr)          likewise for a pointer
//	container_of(ptr, type, member)
//	                           the type * whose member ptr points at
//	current                    the task running on the frame's vCPU
//	                           (pcpu_hot.current_task, or current_task)
//
// The CPU a vCPU runs as is the one whose per-CPU area its GS base points
// at (see kview.cpuOf). A variable of the program named current comes
// before the task; a name followed by '(' is always the idiom (the
// evaluator calls no functions; the kernel has a static this_cpu).

var errNoLinuxScope = errors.New("per-CPU expressions need a Linux kernel image and a stopped vCPU")

// linuxIdioms are the kernel's macros the evaluator takes as calls.
var linuxIdioms = []string{"per_cpu", "per_cpu_ptr", "this_cpu", "this_cpu_ptr", "container_of"}

// builtinCall parses name(...) when name is one of the idioms; ok is false
// (nothing consumed) otherwise.
func (p *parser) builtinCall(name string) (value, bool, error) {
	if !slices.Contains(linuxIdioms, name) {
		return value{}, false, nil
	}
	p.next() // (
	var v value
	var err error
	switch name {
	case "container_of":
		v, err = p.containerOf()
	default:
		v, err = p.perCPU(name)
	}
	return v, true, err
}

// builtinName evaluates a name the program does not define: current.
func (p *parser) builtinName(name string) (value, bool, error) {
	if name != "current" {
		return value{}, false, nil
	}
	if p.staticLinux() {
		t, err := p.staticObject("task_struct")
		return value{typ: ptrTo(t.typ), raw: make([]byte, 8), name: "current"}, true, err
	}
	sc, k, err := p.linuxScope()
	if err != nil {
		return value{}, true, err
	}
	if tt, ok := sc.s.t.(*taskTarget); ok {
		if th, ok := tt.virtual(sc.vcpu); ok && th.err == nil {
			// A task thread's frame: that task, as crash's set PID makes
			// it the context (its vCPU runs another).
			st, err := k.typ("task_struct")
			if err != nil {
				return value{}, true, err
			}
			raw := make([]byte, 8)
			binary.LittleEndian.PutUint64(raw, th.addr)
			return value{typ: ptrTo(st), raw: raw, name: "current"}, true, nil
		}
	}
	a, err := k.currentVar()
	if err != nil {
		return value{}, true, err
	}
	cpu, err := k.cpuOf(sc.vcpu)
	if err != nil {
		return value{}, true, err
	}
	off, err := k.perCPUOffset(cpu)
	if err != nil {
		return value{}, true, err
	}
	tt, err := k.typ("task_struct")
	if err != nil {
		return value{}, true, err
	}
	return value{typ: ptrTo(tt), inMem: true, addr: a + off, name: "current"}, true, nil
}

// staticLinux reports whether the expression is a Linux kernel's
// breakpoint condition or logpoint being checked when it is set (no
// guest state): the kernel's idioms are then values of their types, every
// one of them zero, so that current->pid == 1 checks as it will evaluate.
func (p *parser) staticLinux() bool {
	sc, ok := p.sc.(*staticScope)
	return ok && sc.s.sym != nil && sc.s.isLinux()
}

// staticObject is a kernel object of the named struct (at 0: it reads as
// zeros) for a condition being checked.
func (p *parser) staticObject(name string) (value, error) {
	sc := p.sc.(*staticScope)
	st, err := (&kview{s: sc.s, types: sc.types}).typ(name)
	return value{typ: st, inMem: true, name: name}, err
}

// linuxScope returns the frame scope and a kernel view over its vCPU.
func (p *parser) linuxScope() (*frameScope, *kview, error) {
	sc, ok := p.sc.(*frameScope)
	if !ok || sc.s.sym == nil || !sc.s.isLinux() {
		return nil, nil, errNoLinuxScope
	}
	return sc, &kview{s: sc.s, v: sc.vcpu, types: sc.types}, nil
}

// perCPU evaluates the rest of per_cpu(…), per_cpu_ptr(…), this_cpu(…)
// or this_cpu_ptr(…).
func (p *parser) perCPU(name string) (value, error) {
	v, err := p.ternary()
	if err != nil {
		return value{}, err
	}
	var cpu *value
	if !strings.HasPrefix(name, "this_cpu") {
		if err := p.expect(","); err != nil {
			return value{}, fmt.Errorf("%s(var, cpu): %w", name, err)
		}
		c, err := p.ternary()
		if err != nil {
			return value{}, err
		}
		cpu = &c
	}
	if err := p.expect(")"); err != nil {
		return value{}, err
	}
	return p.perCPUOf(v, cpu, strings.HasSuffix(name, "_ptr"))
}

// perCPUOf is per_cpu(v, cpu) (per_cpu_ptr with ptr), on the frame's CPU
// when cpu is nil.
func (p *parser) perCPUOf(v value, cpuv *value, ptr bool) (value, error) {
	name := "per_cpu"
	if p.staticLinux() { // (its type: the variable's, or the pointer's)
		switch {
		case ptr && v.typ.kind != tPtr:
			return value{}, fmt.Errorf("%s_ptr needs a pointer, not %s", name, v.typ)
		case ptr:
			return rvalue(v.typ, 0), nil
		case !v.inMem:
			return value{}, fmt.Errorf("%s needs a per-CPU variable (an object in memory); for a pointer use %s_ptr", name, name)
		}
		return value{typ: v.typ, inMem: true, name: v.name}, nil
	}
	sc, k, err := p.linuxScope()
	if err != nil {
		return value{}, err
	}
	var cpu int
	if cpuv == nil {
		if cpu, err = k.cpuOf(sc.vcpu); err != nil {
			return value{}, err
		}
	} else {
		c, err := cpuv.u64(p.sc)
		if err != nil {
			return value{}, err
		}
		cpu = int(int64(c))
	}
	off, err := k.perCPUOffset(cpu)
	if err != nil {
		return value{}, err
	}
	if ptr {
		if v.typ.kind != tPtr {
			return value{}, fmt.Errorf("%s_ptr needs a pointer, not %s", name, v.typ)
		}
		a, err := v.u64(p.sc)
		if err != nil {
			return value{}, err
		}
		return rvalue(v.typ, k.perCPUAddr(a)+off), nil
	}
	if !v.inMem {
		return value{}, fmt.Errorf("%s needs a per-CPU variable (an object in memory); for a pointer use %s_ptr", name, name)
	}
	return value{typ: v.typ, inMem: true, addr: k.perCPUAddr(v.addr) + off,
		name: fmt.Sprintf("%s(%s, %d)", name, v.name, cpu)}, nil
}

// containerOf evaluates the rest of container_of(ptr, type, member).
func (p *parser) containerOf() (value, error) {
	ptr, err := p.ternary()
	if err != nil {
		return value{}, err
	}
	if err := p.expect(","); err != nil {
		return value{}, fmt.Errorf("container_of(ptr, type, member): %w", err)
	}
	ct, ok := p.typeName()
	if !ok {
		return value{}, fmt.Errorf("container_of: expected a type name after the pointer")
	}
	if err := p.expect(","); err != nil {
		return value{}, fmt.Errorf("container_of(ptr, type, member): %w", err)
	}
	path, err := p.designator()
	if err != nil {
		return value{}, err
	}
	if err := p.expect(")"); err != nil {
		return value{}, err
	}
	return containerOfValue(p.sc, ptr, ct, path)
}

// containerOfValue is the ct * whose member (a designator path) ptr
// points at.
func containerOfValue(sc scope, ptr value, ct *ctype, path string) (value, error) {
	off, _, err := member(ct, path)
	if err != nil {
		return value{}, fmt.Errorf("container_of: %w", err)
	}
	a, err := ptr.u64(sc)
	if err != nil {
		return value{}, err
	}
	return rvalue(ptrTo(ct), a-uint64(off)), nil
}

// designator parses a member designator: name, then .name or [N] parts.
func (p *parser) designator() (string, error) {
	t := p.next()
	if t.kind != "id" {
		return "", fmt.Errorf("container_of: expected a member name")
	}
	path := t.text
	for {
		switch {
		case p.isOp("."):
			p.next()
			n := p.next()
			if n.kind != "id" {
				return "", fmt.Errorf("container_of: expected a member name after '.'")
			}
			path += "." + n.text
		case p.isOp("["):
			p.next()
			n := p.next()
			if n.kind != "num" {
				return "", fmt.Errorf("container_of: expected a constant index")
			}
			if err := p.expect("]"); err != nil {
				return "", err
			}
			path += "[" + strconv.FormatUint(n.num, 10) + "]"
		default:
			return path, nil
		}
	}
}
