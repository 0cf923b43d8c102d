package session

import (
	"fmt"
	"strings"

	"vmdap/session/symbols"
)

// Reading struct module: the module list, each module's memory regions
// and its sections' addresses, through the kernel's types.

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
	base, size uint64
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
	unload := k.has(t, "init") && k.has(t, "exit") // CONFIG_MODULE_UNLOAD's exit
	if unload {
		fields = append(fields, "init", "exit")
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
			regions = append(regions, r)
		}
	} else {
		regions = append(regions, memRegion{kind: "core", base: o.uint("core_layout.base"), size: o.uint("core_layout.size")},
			memRegion{kind: "init", base: o.uint("init_layout.base"), size: o.uint("init_layout.size")})
	}
	mi.regions = regions
	if k.has(t, "refcnt.counter") {
		mi.refs = int(int32(o.uint("refcnt.counter"))) - 1 // MODULE_REF_BASE
	}
	mi.users = k.moduleUsers(t, addr)
	if unload && o.uint("init") != 0 && o.uint("exit") == 0 {
		// An init function and no exit: it can never be unloaded, and
		// /proc/modules says so among its users (print_unload_info).
		mi.users = append(mi.users, "[permanent]")
	}
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

// size is the module's size as lsmod shows it: all of its memory, the
// init regions too while they are there (a loading module's; the kernel
// zeroes their sizes when it frees them), as /proc/modules adds it up
// (module_total_size, kernel/module/procfs.c; init_layout plus
// core_layout before 6.4).
func (mi modInfo) size() uint64 {
	var n uint64
	for _, r := range mi.regions {
		n += r.size
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
