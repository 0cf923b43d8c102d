package session

import (
	"bytes"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"vmdap/session/symbols"
	"vmdap/vmm"
	"vmdap/x86/disasm"
)

// Loaded kernel modules. The kernel lists them on `modules` (struct
// module.list). Each has its memory regions (mem[] by enum mod_mem_type
// since 6.4; core_layout and init_layout before) and the addresses of its
// sections (sect_attrs, what /sys/module/*/sections shows). With a
// modules folder (the .ko files with DWARF, Debian's -dbg package's
// usr/lib/debug/lib/modules/<version>), each module's symbols are loaded
// at its sections' addresses, as scripts/gdb's lx-symbols does: from the
// module list at stops, and the moment a module loads, from an internal
// breakpoint at do_init_module (its sections are placed, its init has not
// run). Internal breakpoints at do_free_init (a module's init code is
// about to be freed) and free_module (the module is) take its
// breakpoints out while its code is still mapped. Breakpoints on code of
// a module not loaded stay pending and bind when it loads.

// letLinux is the breaklet of the Linux hooks (outside the iota list so
// that the list's kinds keep their values).
const letLinux breakletKind = 0x80

var linuxLet = breaklet{kind: letLinux}

// Hooks: the functions the internal breakpoints are at.
const (
	hookLoad     = "do_init_module"
	hookFreeInit = "do_free_init"
	hookFree     = "free_module"
)

// moduleState tracks the guest's modules (with a modules folder).
type moduleState struct {
	s       *Session
	on      bool
	index   map[string]string // module name → .ko path
	indexed bool
	skipped map[string]string // module name → why its file cannot be read
	known   map[string]*kmod  // the modules loaded, by name
	hooks   map[physKey]string
	want    []string        // hooks not placed yet
	freeing map[uint64]bool // struct module addresses free_module was entered for
}

// kmod is one loaded module.
type kmod struct {
	info   modInfo
	path   string // its .ko, when found
	status string // its symbols' state, for the modules view
	table  *symbols.Table
}

func (s *Session) mods() *moduleState {
	m := &s.linux.mods
	m.s = s
	return m
}

// init turns module tracking on.
func (m *moduleState) init(s *Session) {
	if m.on {
		return
	}
	m.on = true
	m.known = map[string]*kmod{}
	m.hooks = map[physKey]string{}
	m.freeing = map[uint64]bool{}
	m.want = []string{hookLoad, hookFreeInit, hookFree}
}

// placeHooks places the hooks not placed yet (at kernel addresses that
// may not be mapped before the kernel runs).
func (m *moduleState) placeHooks() {
	if !m.on || len(m.want) == 0 {
		return
	}
	b := m.s.bps
	var left []string
	for _, name := range m.want {
		fns := m.s.sym.Kernel().FuncsByName(name)
		if len(fns) == 0 {
			continue // not in this kernel
		}
		hw, err := b.useHW("")
		if err != nil {
			continue
		}
		if hw && name != hookLoad {
			// Debug registers only (no software breakpoints here): of
			// their four, the load hook alone takes one; freed init code
			// and unloads are noticed at the next stop (refresh), and
			// the other three are left to the user.
			continue
		}
		k := physKey{m.hookAddr(fns[0]), hw}
		if err := b.insert(k, linuxLet); err != nil {
			left = append(left, name)
			continue
		}
		m.hooks[k] = name
	}
	m.want = left
}

// hookAddr is where a hook in fn goes: its first instruction the kernel
// never patches. A breakpoint written into guest memory (vmdap's VMM
// writes int3 there) must not sit where the kernel rewrites its own code
// and checks what it finds first: ftrace's __fentry__ call at the entry
// (turned into a NOP at boot), jump labels and static calls (NOPs, jumps
// and calls). Read from the image as linked, before any of that.
func (m *moduleState) hookAddr(fn *symbols.Func) uint64 {
	slide := m.s.sym.Slide()
	code, ok := m.s.sym.Kernel().ImageBytes(fn.Low-slide, 64)
	if !ok {
		return fn.Low
	}
	for off := 0; off+disasm.MaxLen <= len(code) && fn.Low+uint64(off) < fn.High; {
		if bytes.HasPrefix(code[off:], endbr64) {
			off += len(endbr64)
			continue
		}
		in, err := disasm.Decode(code[off:], 64, fn.Low+uint64(off))
		if err != nil {
			break
		}
		if patchable := in.Kind == disasm.KindCall || in.Kind == disasm.KindJump || in.Kind == disasm.KindNop; !patchable {
			return in.PC
		}
		off += in.Len
	}
	return fn.Low
}

var endbr64 = []byte{0xf3, 0x0f, 0x1e, 0xfa}

// unplaceHooks takes the hooks out (before the kernel's symbols move).
func (m *moduleState) unplaceHooks() {
	for k, name := range m.hooks {
		m.s.bps.remove(k, linuxLet)
		m.want = append(m.want, name)
	}
	m.hooks = map[physKey]string{}
}

// linuxSlid re-places what was placed at the kernel's old addresses.
func (s *Session) linuxSlid() {
	if m := s.mods(); m.on {
		m.unplaceHooks()
		m.placeHooks()
	}
}

// linuxHook handles a stop at a hook. Session.mu held, target stopped.
func (s *Session) linuxHook(st vmm.Stop) {
	m := s.mods()
	if !m.on {
		return
	}
	var name string
	for k, n := range m.hooks {
		if k.addr == st.PC {
			name = n
		}
	}
	if name == "" {
		return
	}
	k := s.kview(st.VCPU)
	switch name {
	case hookLoad:
		// do_init_module(struct module *mod): a module at an address
		// one being freed had (its memory reused) is a new one. The
		// one known there is gone, whether its unload was seen
		// (free_module, hooked in software) or not (debug registers),
		// unless it is this very load, met earlier in it (a stop in
		// load_module: COMING or UNFORMED then).
		if mod, err := s.hookArg(st.VCPU, "mod"); err == nil {
			stale := m.freeing[mod]
			delete(m.freeing, mod)
			for name, km := range m.known {
				if km.info.addr == mod && (stale || km.info.state == "LIVE" || km.info.state == "GOING") {
					m.drop(name)
				}
			}
		}
		m.refresh(k)
	case hookFreeInit:
		m.refresh(k)
	case hookFree:
		mod, err := s.hookArg(st.VCPU, "mod") // free_module(struct module *mod)
		if err != nil {
			s.log.WithError(err).Debug("free_module's argument")
			return
		}
		for name, km := range m.known {
			if km.info.addr == mod {
				m.freeing[mod] = true
				m.drop(name)
			}
		}
	}
}

// buildIndex finds the .ko files under the modules folder.
func (m *moduleState) buildIndex() {
	m.indexed = true
	m.index, m.skipped = map[string]string{}, map[string]string{}
	root := m.s.linux.opts.Modules
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		base := d.Name()
		var name string
		switch {
		case strings.HasSuffix(base, ".ko"):
			name = strings.TrimSuffix(base, ".ko")
		case strings.HasSuffix(base, ".ko.debug"):
			name = strings.TrimSuffix(base, ".ko.debug")
		default:
			for _, z := range []string{".ko.xz", ".ko.zst", ".ko.gz"} {
				if strings.HasSuffix(base, z) {
					m.skipped[modName(strings.TrimSuffix(base, z))] = p + " is compressed: unpack it (" + z[4:] + " -d) for vmdap to read it"
				}
			}
			return nil
		}
		if _, dup := m.index[modName(name)]; !dup {
			m.index[modName(name)] = p
		}
		return nil
	})
}

// modName is a module's name as the kernel spells it (dashes in file
// names are underscores).
func modName(file string) string { return strings.ReplaceAll(file, "-", "_") }

// refresh compares the module list with what is known: modules that came
// get their symbols, those that went lose them, those whose memory
// changed (init code freed) move.
func (m *moduleState) refresh(k *kview) {
	list, err := k.modules()
	if err != nil {
		m.s.log.WithError(err).Debug("reading the module list")
		if list == nil {
			return
		}
	}
	seen := map[string]bool{}
	listed := map[uint64]bool{}
	for _, mi := range list {
		listed[mi.addr] = true
		if m.freeing[mi.addr] {
			continue
		}
		seen[mi.name] = true
		km := m.known[mi.name]
		switch {
		case km != nil && km.info.addr == mi.addr:
			old := km.info.ranges()
			km.info = mi
			if !sameRanges(old, mi.ranges()) {
				if km.table != nil {
					m.s.sym.SetRanges(mi.name, mi.ranges())
				}
				m.s.emit(ModuleChanged{Change: ModuleUpdated, Module: km.describe()})
				m.s.bps.rebind()
			}
		default:
			if km != nil {
				m.drop(mi.name)
			}
			m.load(k, mi)
		}
	}
	for name := range m.known {
		if !seen[name] {
			m.drop(name)
		}
	}
	for a := range m.freeing {
		if !listed[a] {
			delete(m.freeing, a)
		}
	}
}

func sameRanges(a, b []symbols.Range) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// load learns of a module that appeared and loads its symbols.
func (m *moduleState) load(k *kview, mi modInfo) {
	if !m.indexed {
		m.buildIndex()
	}
	km := &kmod{info: mi}
	m.known[mi.name] = km
	path, ok := m.index[mi.name]
	switch {
	case ok:
		km.path = path
		secs, err := k.sections(mi)
		if err != nil {
			// The code's address at least.
			secs = map[string]uint64{".text": mi.text()}
			m.s.log.WithError(err).Debugf("module %s: sections", mi.name)
		}
		m.s.log.Debugf("module %s: sections %x, memory %x", mi.name, secs, mi.ranges())
		t, err := symbols.LoadRelocated(path, secs)
		if err != nil {
			km.status = "symbols not loaded: " + err.Error()
			break
		}
		t.MapSources(m.s.srcMap) // the sourceMap holds for a module's sources as for the kernel's
		km.table = t
		km.status = "Symbols loaded."
		if !t.HasDWARF() {
			km.status = "Symbols loaded (no DWARF)."
		}
		m.s.sym.Add(mi.name, t, mi.ranges())
	default:
		if why, ok := m.skipped[mi.name]; ok {
			km.status = "symbols not loaded: " + why
		} else {
			km.status = fmt.Sprintf("symbols not loaded: no %s.ko in %s", mi.name, m.s.linux.opts.Modules)
		}
	}
	m.s.emit(ModuleChanged{Change: ModuleLoaded, Module: km.describe()})
	m.s.emit(Output{Kind: OutNote, Text: fmt.Sprintf("vmdap: module %s loaded at %#x: %s\n", mi.name, mi.text(), km.status)})
	if km.table != nil {
		m.s.bps.rebind()
	}
}

// drop forgets a module: its symbols and its breakpoints go (they stay
// pending until it loads again).
func (m *moduleState) drop(name string) {
	km := m.known[name]
	if km == nil {
		return
	}
	delete(m.known, name)
	m.s.emit(ModuleChanged{Change: ModuleUnloaded, Module: km.describe()})
	if km.table != nil {
		m.s.sym.Remove(name)
		m.s.bps.rebind()
	}
}

// hookArg reads a parameter of the function a hook stopped in, through
// its DWARF location (the hook is past the entry: the register that
// carried it may have moved), else the first argument register.
func (s *Session) hookArg(v int, name string) (uint64, error) {
	sc, err := s.newScope(v, 0)
	if err != nil {
		return 0, err
	}
	if val, ok, err := sc.lookupVar(name); ok && err == nil {
		return val.u64(sc)
	}
	return sc.regs.RDI, nil
}
