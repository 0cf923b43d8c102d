package session

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"vmdap/session/symbols"
	"vmdap/vmm"
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

// modInfo is what lsmod shows of a module.
type modInfo struct {
	addr    uint64 // struct module
	name    string
	state   string
	regions []memRegion
	refs    int
	users   []string
}

// memRegion is one of a module's memory regions.
type memRegion struct {
	kind       string // "MOD_TEXT" … or "core"/"init"
	init       bool
	base, size uint64
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
		k := physKey{fns[0].Low, hw}
		if err := b.insert(k, linuxLet); err != nil {
			left = append(left, name)
			continue
		}
		m.hooks[k] = name
	}
	m.want = left
}

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
	case hookLoad, hookFreeInit:
		m.refresh(k)
	case hookFree:
		r, err := s.t.Regs(st.VCPU)
		if err != nil {
			return
		}
		mod := r.RDI // free_module(struct module *mod)
		for name, km := range m.known {
			if km.info.addr == mod {
				m.freeing[mod] = true
				m.drop(name, "removed")
			}
		}
	}
}

// modules reads the module list.
func (k *kview) modules() ([]modInfo, error) {
	head, err := k.sym("modules")
	if err != nil {
		return nil, err
	}
	t, err := k.typ("module")
	if err != nil {
		return nil, err
	}
	listOff, err := k.off(t, "list")
	if err != nil {
		return nil, err
	}
	var out []modInfo
	var rerr error
	err = k.list(head, 1<<16, func(node uint64) bool {
		mi, err := k.module(t, node-uint64(listOff))
		if err != nil {
			rerr = err
			return false
		}
		out = append(out, mi)
		return true
	})
	if rerr != nil {
		return out, rerr
	}
	return out, err
}

// module reads one struct module.
func (k *kview) module(t *ctype, addr uint64) (modInfo, error) {
	fields := []string{"name", "state"}
	var regions []memRegion
	var memT *ctype
	if k.has(t, "mem") {
		_, f, _ := member(t, "mem")
		memT = f.typ
		fields = append(fields, "mem")
	} else {
		for _, f := range []string{"core_layout.base", "core_layout.size", "init_layout.base", "init_layout.size"} {
			if k.has(t, f) {
				fields = append(fields, f)
			}
		}
	}
	if k.has(t, "refcnt.counter") {
		fields = append(fields, "refcnt.counter")
	}
	o, err := k.object(addr, t, fields...)
	if err != nil {
		return modInfo{}, err
	}
	mi := modInfo{addr: addr, name: o.text("name"), refs: -1}
	mi.state = strings.TrimPrefix(enumName(t, "state", int64(int32(o.uint("state")))), "MODULE_STATE_")
	if memT != nil && memT.kind == tArray {
		kinds := map[int64]string{}
		if e, err := k.typ("mod_mem_type"); err == nil {
			for _, v := range e.enums {
				kinds[v.val] = v.name
			}
		}
		for i := int64(0); i < memT.count; i++ {
			p := fmt.Sprintf("mem[%d]", i)
			r := memRegion{kind: kinds[i], base: o.uint(p + ".base"), size: o.uint(p + ".size")}
			if r.kind == "" {
				r.kind = fmt.Sprint(i)
			}
			r.init = strings.Contains(r.kind, "INIT")
			regions = append(regions, r)
		}
	} else {
		regions = append(regions, memRegion{kind: "core", base: o.uint("core_layout.base"), size: o.uint("core_layout.size")},
			memRegion{kind: "init", init: true, base: o.uint("init_layout.base"), size: o.uint("init_layout.size")})
	}
	mi.regions = regions
	if k.has(t, "refcnt.counter") {
		mi.refs = int(int32(o.uint("refcnt.counter"))) - 1 // MODULE_REF_BASE
	}
	mi.users = k.moduleUsers(t, addr)
	return mi, nil
}

// moduleUsers names the modules that use the module at addr (its
// source_list of struct module_use).
func (k *kview) moduleUsers(t *ctype, addr uint64) []string {
	useT, err := k.typ("module_use")
	if err != nil || !k.has(t, "source_list") {
		return nil
	}
	srcOff, _ := k.off(t, "source_list")
	useOff, _ := k.off(useT, "source_list")
	nameOff, _ := k.off(t, "name")
	var out []string
	_ = k.list(addr+uint64(srcOff), 1024, func(node uint64) bool {
		o, err := k.object(node-uint64(useOff), useT, "source")
		if err != nil {
			return false
		}
		if n, err := k.str(o.uint("source")+uint64(nameOff), 56); err == nil {
			out = append(out, n)
		}
		return true
	})
	return out
}

// enumName names an enum member's value (its number when unnamed).
func enumName(t *ctype, path string, v int64) string {
	_, f, err := member(t, path)
	if err == nil {
		for _, e := range f.typ.enums {
			if e.val == v {
				return e.name
			}
		}
	}
	return fmt.Sprint(v)
}

// ranges is where the module's memory is now.
func (mi modInfo) ranges() []symbols.Range {
	var out []symbols.Range
	for _, r := range mi.regions {
		if r.base != 0 && r.size != 0 {
			out = append(out, symbols.Range{Low: r.base, High: r.base + r.size})
		}
	}
	return out
}

// size is the module's size as lsmod shows it: its memory without init.
func (mi modInfo) size() uint64 {
	var n uint64
	for _, r := range mi.regions {
		if !r.init {
			n += r.size
		}
	}
	return n
}

// text is the address of the module's code.
func (mi modInfo) text() uint64 {
	for _, r := range mi.regions {
		if r.kind == "MOD_TEXT" || r.kind == "core" {
			return r.base
		}
	}
	return 0
}

// sections reads a module's section addresses from its sect_attrs.
func (k *kview) sections(mi modInfo) (map[string]uint64, error) {
	t, err := k.typ("module")
	if err != nil {
		return nil, err
	}
	if !k.has(t, "sect_attrs") {
		return nil, fmt.Errorf("struct module has no sect_attrs")
	}
	o, err := k.object(mi.addr, t, "sect_attrs")
	if err != nil {
		return nil, err
	}
	sa := o.uint("sect_attrs")
	if sa == 0 {
		return nil, fmt.Errorf("the module has no section attributes (sect_attrs is NULL)")
	}
	saT, err := k.typ("module_sect_attrs")
	if err != nil {
		return nil, err
	}
	attrT, err := k.typ("module_sect_attr")
	if err != nil {
		return nil, err
	}
	h, err := k.object(sa, saT, "nsections")
	if err != nil {
		return nil, err
	}
	n := int(h.uint("nsections"))
	attrsOff, err := k.off(saT, "attrs")
	if err != nil || n <= 0 || n > 4096 || attrT.size <= 0 {
		return nil, fmt.Errorf("module_sect_attrs: %d sections", n)
	}
	namePath := "battr.attr.name"
	if k.has(attrT, "name") {
		namePath = "name" // before 5.8: a name of its own
	}
	raw, err := k.read(sa+uint64(attrsOff), n*int(attrT.size))
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for i := 0; i < n; i++ {
		a := &obj{t: attrT, b: raw[i*int(attrT.size) : (i+1)*int(attrT.size)]}
		name, err := k.str(a.uint(namePath), 256)
		if err != nil || name == "" {
			continue
		}
		out[name] = a.uint("address")
	}
	return out, nil
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
				m.s.emit(ModuleChanged{Reason: "changed", Module: km.describe()})
				m.s.bps.rebind()
			}
		default:
			if km != nil {
				m.drop(mi.name, "removed")
			}
			m.load(k, mi)
		}
	}
	for name := range m.known {
		if !seen[name] {
			m.drop(name, "removed")
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
	m.s.emit(ModuleChanged{Reason: "new", Module: km.describe()})
	m.s.emit(Output{Category: "console", Text: fmt.Sprintf("vmdap: module %s loaded at %#x: %s\n", mi.name, mi.text(), km.status)})
	if km.table != nil {
		m.s.bps.rebind()
	}
}

// drop forgets a module: its symbols and its breakpoints go (they stay
// pending until it loads again).
func (m *moduleState) drop(name, reason string) {
	km := m.known[name]
	if km == nil {
		return
	}
	delete(m.known, name)
	m.s.emit(ModuleChanged{Reason: reason, Module: km.describe()})
	if km.table != nil {
		m.s.sym.Remove(name)
		m.s.bps.rebind()
	}
}

// describe is the module as the modules view shows it.
func (km *kmod) describe() ModuleInfo {
	mi := ModuleInfo{ID: km.info.name, Name: km.info.name, Path: km.path, SymbolStatus: km.status}
	if rs := km.info.ranges(); len(rs) > 0 {
		mi.Low, mi.High = rs[0].Low, rs[0].High
		for _, r := range rs {
			mi.Low, mi.High = min(mi.Low, r.Low), max(mi.High, r.High)
		}
	}
	return mi
}

// ModuleInfo is one module for the DAP modules view.
type ModuleInfo struct {
	ID, Name, Path string
	SymbolStatus   string
	Low, High      uint64 // the address range (0, 0: unknown)
}

// ModuleChanged reports a module that loaded, moved or unloaded.
type ModuleChanged struct {
	Reason string // "new", "changed", "removed"
	Module ModuleInfo
}

func (ModuleChanged) event() {}

// Modules lists the image and the guest's loaded modules.
func (s *Session) Modules() ([]ModuleInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ModuleInfo
	if s.sym == nil {
		return nil, nil
	}
	kt := s.sym.Kernel()
	img := ModuleInfo{ID: "0", Name: filepath.Base(kt.Path), Path: kt.Path, SymbolStatus: "Symbols loaded."}
	if fs := kt.Funcs(); len(fs) > 0 {
		img.Low, img.High = fs[0].Low, fs[len(fs)-1].High
	}
	out = append(out, img)
	if !s.isLinux() {
		return out, nil
	}
	m := s.mods()
	if m.on {
		names := make([]string, 0, len(m.known))
		for n := range m.known {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			out = append(out, m.known[n].describe())
		}
		return out, nil
	}
	if s.state != StateStopped {
		return out, nil
	}
	list, _ := s.kview(s.curVCPU).modules()
	for _, mi := range list {
		km := &kmod{info: mi, status: "symbols not loaded: set \"modules\" to the folder of the .ko files with DWARF"}
		out = append(out, km.describe())
	}
	return out, nil
}

// lsmodCommand lists the modules as lsmod does, with where each is and
// the state of its symbols.
func (s *Session) lsmodCommand(v int) (string, error) {
	if !s.isLinux() {
		return "", errNotLinux
	}
	list, err := s.kview(v).modules()
	if len(list) == 0 && err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-24s %8s  %-4s %-18s  %-8s %s\n", "Module", "Size", "Used", "Address", "State", "Used by")
	for _, mi := range list {
		refs := "-"
		if mi.refs >= 0 {
			refs = fmt.Sprint(mi.refs)
		}
		fmt.Fprintf(&b, "%-24s %8d  %-4s %#-18x  %-8s %s", mi.name, mi.size(), refs, mi.text(), mi.state, strings.Join(mi.users, ","))
		if km := s.mods().known[mi.name]; s.mods().on && km != nil {
			fmt.Fprintf(&b, "  (%s)", strings.TrimSuffix(km.status, "."))
		}
		b.WriteByte('\n')
	}
	if len(list) == 0 {
		b.WriteString("(no modules are loaded)\n")
	}
	if err != nil {
		fmt.Fprintf(&b, "(the list is cut short: %v)\n", err)
	}
	return b.String(), nil
}
