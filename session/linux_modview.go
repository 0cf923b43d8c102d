package session

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// The modules as the user sees them: the DAP modules view and its events,
// and lsmod.

// describe is the module as the modules view shows it.
func (km *kmod) describe() ModuleInfo {
	mi := ModuleInfo{ID: km.info.name, Name: km.info.name, Path: km.path, SymbolStatus: km.status}
	if km.table != nil {
		mi.Optimized = km.table.Optimized()
	}
	if rs := km.info.ranges(); len(rs) > 0 {
		mi.Low, mi.High = rs[0].Low, rs[0].High
		for _, r := range rs {
			mi.Low, mi.High = min(mi.Low, r.Low), max(mi.High, r.High)
		}
	}
	return mi
}

// ModuleInfo is one module, as the client's modules view lists it.
type ModuleInfo struct {
	ID, Name, Path string
	SymbolStatus   string
	Low, High      uint64 // the address range (0, 0: unknown)
	Optimized      bool   // its code was compiled with optimisation (its DWARF says)
}

// ModuleChanged reports a module that loaded, moved or unloaded.
type ModuleChanged struct {
	Change ModuleChange
	Module ModuleInfo
}

// ModuleChange says what happened to a module.
type ModuleChange uint8

const (
	ModuleLoaded  ModuleChange = iota
	ModuleUpdated              // its symbols or sections changed (its init code was freed)
	ModuleUnloaded
)

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
	img := ModuleInfo{ID: "0", Name: filepath.Base(kt.Path), Path: kt.Path, SymbolStatus: "Symbols loaded.", Optimized: kt.Optimized()}
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
	syms := s.mods().on // the symbols' state, in a column of its own
	fmt.Fprintf(&b, "%-24s %8s  %-4s %-18s  %-8s ", "Module", "Size", "Used", "Address", "State")
	if syms {
		fmt.Fprintf(&b, "%-24s ", "Symbols")
	}
	b.WriteString("Used by\n")
	for _, mi := range list {
		refs := "-"
		if mi.refs >= 0 {
			refs = fmt.Sprint(mi.refs)
		}
		fmt.Fprintf(&b, "%-24s %8d  %-4s %#-18x  %-8s ", mi.name, mi.size(), refs, mi.text(), mi.state)
		if syms {
			st := "-"
			if km := s.mods().known[mi.name]; km != nil {
				st = strings.TrimSuffix(km.status, ".")
			}
			fmt.Fprintf(&b, "%-24s ", st)
		}
		b.WriteString(strings.Join(mi.users, ","))
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
