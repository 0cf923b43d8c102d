package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Linux awareness: when the image is a Linux kernel (it has linux_banner
// and a struct task_struct), vmdap reads the kernel's own data structures
// through the kernel's DWARF types, as the kernel's scripts/gdb helpers and
// drgn do: the printk ring buffer (dmesg), the task list (tasks, and tasks
// as threads), loaded modules (lsmod, their symbols, the DAP modules view)
// and per-CPU data in expressions. Nothing is laid out by hand: member
// offsets, sizes and enumerators come from the types, so any kernel whose
// types have the members used works.
//
// Every function here runs with Session.mu held and the target stopped.

// LinuxOptions are the Linux-specific settings of a session.
type LinuxOptions struct {
	// Modules is a folder holding the kernel modules' .ko files with
	// DWARF (searched recursively); empty: module symbols are not loaded.
	Modules string
	// KernelLog prints new kernel log records to the console at each stop.
	KernelLog bool
	// TaskThreads shows the kernel's tasks as threads beside the vCPUs.
	TaskThreads bool
}

// linuxState is what the session knows of a Linux guest.
type linuxState struct {
	checked bool // detection ran
	is      bool // the image is a Linux kernel
	opts    LinuxOptions
	log     dmesgState
	mods    moduleState
	tasks   taskThreads
	// vcpuNames: each vCPU's running task, read once per stop (nil: not
	// read yet).
	vcpuNames []string
}

// SetLinuxOptions sets the Linux settings (before the guest runs).
func (s *Session) SetLinuxOptions(o LinuxOptions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.linux.opts = o
	if !s.isLinux() {
		if o != (LinuxOptions{}) {
			s.emit(Output{Kind: OutImportant, Text: "vmdap: \"modules\", \"kernelLog\" and \"taskThreads\" are for a Linux kernel's vmlinux (with linux_banner and struct task_struct in its symbols), and this image is not one: ignored\n"})
		}
		return
	}
	if o.Modules != "" {
		s.mods().init(s)
		if s.state == StateStopped {
			s.mods().placeHooks()
		}
	}
}

// isLinux reports whether the image is a Linux kernel.
func (s *Session) isLinux() bool {
	l := &s.linux
	if !l.checked {
		l.checked = true
		if s.sym != nil {
			_, banner := s.sym.Kernel().SymbolAddr("linux_banner")
			_, tasks := s.sym.Kernel().TypeByName("task_struct")
			l.is = banner && tasks
		}
	}
	return l.is
}

var errNotLinux = errors.New("the guest image is not a Linux kernel with DWARF (no linux_banner and struct task_struct): Linux commands need one")

// linuxAtStop runs the Linux work of a user-visible stop on vCPU v: the
// module list (loads and unloads the internal breakpoints missed), new
// kernel log records, the internal breakpoints not placed yet.
func (s *Session) linuxAtStop(v int) {
	if !s.isLinux() {
		return
	}
	k := s.kview(v)
	if s.linux.opts.Modules != "" {
		s.mods().refresh(k)
		s.mods().placeHooks()
	}
	if s.linux.opts.KernelLog {
		s.printNewLog(k)
	}
	s.linux.tasks.stale = true
	s.linux.vcpuNames = nil
}

// kview reads kernel objects through the kernel's types.
type kview struct {
	s     *Session
	v     int // the vCPU whose view of memory is used
	types *typeCache
}

// kview returns a kernel view for a stop of vCPU v: memory is read through
// a vCPU running kernel code where there is one (a vCPU in user mode may
// have the kernel unmapped, with page-table isolation).
func (s *Session) kview(v int) *kview {
	k := &kview{s: s, v: v, types: newTypeCache(s.sym)}
	if sr, err := s.t.SRegs(v); err == nil && sr.CS.Selector&3 == 0 {
		return k
	}
	for i := 0; i < s.t.VCPUs(); i++ {
		if sr, err := s.t.SRegs(i); err == nil && sr.CS.Selector&3 == 0 {
			k.v = i
			break
		}
	}
	return k
}

// typ returns a kernel type by name ("task_struct", "struct module").
func (k *kview) typ(name string) (*ctype, error) {
	name = strings.TrimSpace(name)
	for _, p := range []string{"struct ", "union ", "enum "} {
		name = strings.TrimPrefix(name, p)
	}
	dt, ok := k.s.sym.TypeByName(name)
	if !ok {
		return nil, fmt.Errorf("the kernel's debug information has no type %q", name)
	}
	return fromDWARF(dt, k.types), nil
}

// has reports whether a struct type has a member (a dotted path).
func (k *kview) has(t *ctype, path string) bool {
	_, _, err := member(t, path)
	return err == nil
}

// member resolves a member path ("thread.sp", "mem[4].base") of t to its
// offset and field (its type, and its bits when a bit field).
func member(t *ctype, path string) (int64, field, error) {
	var off int64
	cur := t
	var fld field
	for _, part := range strings.Split(path, ".") {
		idx := -1
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			n, err := strconv.Atoi(part[i+1 : len(part)-1])
			if err != nil || n < 0 {
				return 0, field{}, fmt.Errorf("bad member %q", path)
			}
			part, idx = part[:i], n
		}
		if cur.kind != tStruct {
			return 0, field{}, fmt.Errorf("%s is not a struct (member %q)", cur, path)
		}
		f, ok := cur.fieldByName(part)
		if !ok {
			return 0, field{}, fmt.Errorf("%s has no member %q", cur, part)
		}
		off += f.off
		cur, fld = f.typ, f
		if idx >= 0 {
			if cur.kind != tArray || cur.el() == nil {
				return 0, field{}, fmt.Errorf("%s.%s is not an array", t, part)
			}
			off += int64(idx) * cur.el().size
			cur = cur.el()
			fld = field{name: part, typ: cur}
		}
	}
	fld.off = off
	return off, fld, nil
}

// off returns a member's offset, for container_of.
func (k *kview) off(t *ctype, path string) (int64, error) {
	o, _, err := member(t, path)
	return o, err
}

// read reads n bytes of kernel memory.
func (k *kview) read(addr uint64, n int) ([]byte, error) {
	if n < 0 || n > 64<<20 {
		return nil, fmt.Errorf("reading %d bytes", n)
	}
	b := make([]byte, n)
	got, err := k.s.t.ReadMemory(k.v, b, addr)
	if got < n {
		if err == nil {
			err = fmt.Errorf("short read at %#x", addr+uint64(got))
		}
		return b[:got], err
	}
	return b, nil
}

func (k *kview) u64(addr uint64) (uint64, error) {
	b, err := k.read(addr, 8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// str reads a NUL-terminated string of at most max bytes.
func (k *kview) str(addr uint64, max int) (string, error) {
	b := make([]byte, max)
	n, err := k.s.t.ReadMemory(k.v, b, addr)
	b = b[:n]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return string(b[:i]), nil
	}
	if err != nil && n == 0 {
		return "", err
	}
	return string(b), nil
}

// obj is one kernel object read whole (or the span of its members that
// were asked for).
type obj struct {
	addr uint64
	t    *ctype
	base int64 // offset of b[0] in the object
	b    []byte
}

// object reads the members paths of the object of type t at addr, in one
// read spanning them.
func (k *kview) object(addr uint64, t *ctype, paths ...string) (*obj, error) {
	lo, hi := int64(-1), int64(0)
	for _, p := range paths {
		o, f, err := member(t, p)
		if err != nil {
			return nil, err
		}
		if lo < 0 || o < lo {
			lo = o
		}
		if e := o + max(f.typ.size, 1); e > hi {
			hi = e
		}
	}
	if lo < 0 {
		lo, hi = 0, t.size
	}
	b, err := k.read(addr+uint64(lo), int(hi-lo))
	if err != nil {
		return nil, fmt.Errorf("reading %s at %#x: %w", t, addr, err)
	}
	return &obj{addr: addr, t: t, base: lo, b: b}, nil
}

// uint reads an integer or pointer member (zero-extended; a signed
// member's value is sign-extended).
func (o *obj) uint(path string) uint64 {
	off, f, err := member(o.t, path)
	if err != nil {
		return 0
	}
	i := off - o.base
	n := f.typ.size
	if n <= 0 || n > 8 || i < 0 || i+n > int64(len(o.b)) {
		return 0
	}
	if f.bitSize > 0 {
		var buf [8]byte
		copy(buf[:], o.b[i:])
		return bitfield(binary.LittleEndian.Uint64(buf[:]), f, f.typ.signed)
	}
	return intFrom(o.b[i:i+n], f.typ.signed)
}

// at returns a member's address.
func (o *obj) at(path string) uint64 {
	off, _, err := member(o.t, path)
	if err != nil {
		return 0
	}
	return o.addr + uint64(off)
}

// text reads a char array member as a string.
func (o *obj) text(path string) string {
	off, f, err := member(o.t, path)
	if err != nil {
		return ""
	}
	i := off - o.base
	if i < 0 || i+f.typ.size > int64(len(o.b)) {
		return ""
	}
	b := o.b[i : i+f.typ.size]
	if j := bytes.IndexByte(b, 0); j >= 0 {
		b = b[:j]
	}
	return string(b)
}

// sym returns a kernel symbol's run-time address.
func (k *kview) sym(name string) (uint64, error) {
	if a, ok := k.s.sym.Kernel().SymbolAddr(name); ok {
		return a, nil
	}
	return 0, fmt.Errorf("the kernel has no symbol %q", name)
}

// list walks a struct list_head at head (a kernel circular list), calling
// fn with each entry's list_head address, until fn returns false. It
// stops at a loop or after limit entries.
func (k *kview) list(head uint64, limit int, fn func(node uint64) bool) error {
	seen := map[uint64]bool{head: true}
	next, err := k.u64(head) // list_head.next is its first member
	if err != nil {
		return err
	}
	for n := 0; next != head; n++ {
		if n >= limit {
			return fmt.Errorf("list at %#x: more than %d entries", head, limit)
		}
		if next == 0 || seen[next] {
			return fmt.Errorf("list at %#x is broken at %#x", head, next)
		}
		seen[next] = true
		if !fn(next) {
			return nil
		}
		if next, err = k.u64(next); err != nil {
			return err
		}
	}
	return nil
}

// enumVal returns an enumerator's value from the kernel's types.
func (k *kview) enumVal(typ, name string) (int64, error) {
	t, err := k.typ(typ)
	if err != nil {
		return 0, err
	}
	for _, e := range t.enums {
		if e.name == name {
			return e.val, nil
		}
	}
	return 0, fmt.Errorf("enum %s has no %s", typ, name)
}

// perCPUOffset returns __per_cpu_offset[cpu].
// A kernel built without SMP has one CPU and its per-CPU variables are
// plain ones (offset 0).
func (k *kview) perCPUOffset(cpu int) (uint64, error) {
	n, err := k.nrCPUs()
	if err == nil && cpu >= n || cpu < 0 {
		return 0, fmt.Errorf("CPU %d does not exist (nr_cpu_ids is %d)", cpu, n)
	}
	base, err := k.sym("__per_cpu_offset")
	if err != nil {
		if !k.smp() {
			return 0, nil
		}
		return 0, err
	}
	return k.u64(base + 8*uint64(cpu))
}

// smp reports whether the kernel was built for several CPUs.
func (k *kview) smp() bool {
	_, ok := k.s.sym.Kernel().SymbolAddr("__per_cpu_offset")
	return ok
}

// nrCPUs returns nr_cpu_ids (1 without SMP).
func (k *kview) nrCPUs() (int, error) {
	a, err := k.sym("nr_cpu_ids")
	if err != nil {
		if !k.smp() {
			return 1, nil
		}
		return 0, err
	}
	b, err := k.read(a, 4)
	if err != nil {
		return 0, err
	}
	return int(binary.LittleEndian.Uint32(b)), nil
}

// perCPUAddr turns the address of a per-CPU variable as the symbols give
// it into its offset in a CPU's area: the symbols move a relocated
// (KASLR) kernel's per-CPU symbols too, which the kernel does not.
func (k *kview) perCPUAddr(a uint64) uint64 {
	slide := k.s.sym.Slide()
	if slide == 0 {
		return a
	}
	// Zero-based per-CPU symbols (x86-64 before 6.15) are offsets, which
	// KASLR leaves alone.
	start, ok1 := k.s.sym.Kernel().LinkSymbol("__per_cpu_start")
	end, ok2 := k.s.sym.Kernel().LinkSymbol("__per_cpu_end")
	if ok1 && ok2 && start == 0 && a-slide < end {
		return a - slide
	}
	return a
}

// cpuOf returns the Linux CPU number vCPU v runs as: the one whose
// per-CPU area its GS base points at (kernel mode), else the one its
// IA32_KERNEL_GS_BASE points at (user mode, or kernel entry code before
// its SWAPGS, where GS holds the user's base), else in user mode the
// vCPU's own index (a backend that cannot read that MSR).
func (k *kview) cpuOf(v int) (int, error) {
	if !k.smp() {
		return 0, nil
	}
	n, err := k.nrCPUs()
	if err != nil {
		return 0, err
	}
	sr, err := k.s.t.SRegs(v)
	if err != nil {
		return 0, err
	}
	start, _ := k.s.sym.Kernel().SymbolAddr("__per_cpu_start")
	start = k.perCPUAddr(start)
	base, err := k.sym("__per_cpu_offset")
	if err != nil {
		return 0, err
	}
	bases := []uint64{sr.GS.Base, sr.KernelGSBase}
	if sr.CS.Selector&3 != 0 {
		bases[0], bases[1] = bases[1], bases[0] // user mode: GS is the user's to set
	}
	// __per_cpu_offset is read a piece at a time, a few CPUs first: until
	// setup_per_cpu_areas, nr_cpu_ids is NR_CPUS (8,192 in distribution
	// kernels), and the whole array, read for each vCPU at each stop, was
	// 64 KB a vCPU over a GDB stub, half a second a stop at start_kernel.
	var offs []byte
	for have, want := 0, min(n, 64); have < min(n, 8192); have, want = want, min(want*8, n, 8192) {
		more, err := k.read(base+8*uint64(have), 8*(want-have))
		if err != nil {
			break
		}
		offs = append(offs, more...)
		if i, ok := gsArea(offs, start, bases[0]); ok {
			return i, nil
		}
	}
	if i, ok := gsArea(offs, start, bases[1]); ok {
		return i, nil
	}
	// A vCPU in user mode has its user's GS base and may have no kernel
	// GS base (a dump's NT_PRSTATUS), and a kdump's NT_PRSTATUS has the
	// user's GS base in the kernel too (ELF_CORE_COPY_REGS writes the
	// inactive one, x86_gsbase_read_cpu_inactive): such a CPU is the
	// one of its number, as the kernel writes its crash notes in CPU
	// order (and QEMU numbers its vCPUs as Linux does).
	if (sr.CS.Selector&3 != 0 || k.s.dump != nil) && v < n {
		return v, nil
	}
	return 0, fmt.Errorf("vCPU %d: neither its GS base %#x nor its kernel GS base %#x is a CPU's per-CPU area (nr_cpu_ids %d)", v, sr.GS.Base, sr.KernelGSBase, n)
}

// gsArea finds the CPU whose per-CPU area (offs: __per_cpu_offset's
// first entries, from the per-CPU section's start) a GS base points at.
func gsArea(offs []byte, start, gs uint64) (int, bool) {
	for i := 0; i < len(offs)/8; i++ {
		if o := binary.LittleEndian.Uint64(offs[8*i:]); o+start == gs && o != 0 {
			return i, true
		}
	}
	return 0, false
}

// perCPUHint adds to err, a failed read of a value at addr, that addr is
// in the per-CPU area: per-CPU variables of x86-64 kernels before 6.15
// are linked as offsets from 0, where nothing is mapped, so runqueues or
// runqueues.nr_running cannot be read as they are (gdb says "Cannot
// access memory at address 0x35e80"); per_cpu(var, cpu) and
// this_cpu(var) read a CPU's copy, as crash's "p" of a per-CPU
// variable says. Other errors, and other kernels, are left as they are.
func (s *Session) perCPUHint(addr uint64, err error) error {
	if err == nil || !s.inPerCPUArea(addr) {
		return err
	}
	return fmt.Errorf("%w (%#x is an offset in the per-CPU areas: read a per-CPU variable as per_cpu(var, cpu) or this_cpu(var))", err, addr-s.sym.Slide())
}

// inPerCPUArea reports whether addr (as the symbols give it) is a
// zero-based per-CPU offset of a Linux kernel.
func (s *Session) inPerCPUArea(addr uint64) bool {
	if s.sym == nil || !s.isLinux() {
		return false
	}
	k := s.sym.Kernel()
	start, ok1 := k.LinkSymbol("__per_cpu_start")
	end, ok2 := k.LinkSymbol("__per_cpu_end")
	return ok1 && ok2 && start == 0 && addr-s.sym.Slide() < end
}
