package symbols

import (
	"encoding/binary"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// readelfDIE is one DIE of readelf --debug-dump=info: its tag and its
// attributes as readelf prints them.
type readelfDIE struct {
	off      uint64
	tag      string
	attrs    map[string]string
	parent   *readelfDIE
	children []*readelfDIE
}

var (
	dieHead    = regexp.MustCompile(`^\s*<(\d+)><([0-9a-f]+)>: Abbrev Number: (\d+)(?: \((\w+)\))?`)
	dieAttr    = regexp.MustCompile(`^\s*<[0-9a-f]+>\s+(DW_AT_\w+)\s*: ?(.*)$`)
	locViews   = regexp.MustCompile(`^\s*([0-9a-f]{8}) v\S+ v\S+ views at \S+ for:$`)
	locEntryRE = regexp.MustCompile(`^\s*(?:([0-9a-f]{8}) )?([0-9a-f]+) ([0-9a-f]+) (?:\((.*)\)|(DW_OP_.*))$`)
	// readelf writes an indexed value (clang's DW_FORM_addrx,
	// DW_FORM_loclistx) with its index first: "(index: 0x5): 0x142".
	indexPrefix = regexp.MustCompile(`^\(index: (?:0x)?[0-9a-f]+\): `)
	locEnd      = regexp.MustCompile(`^\s*([0-9a-f]{8}) <End of list>$`)
)

// readelfDIEs parses readelf --debug-dump=info into DIEs by offset.
func readelfDIEs(out string) map[uint64]*readelfDIE {
	all := map[uint64]*readelfDIE{}
	var stack []*readelfDIE
	var cur *readelfDIE
	for _, l := range strings.Split(out, "\n") {
		if m := dieHead.FindStringSubmatch(l); m != nil {
			depth, _ := strconv.Atoi(m[1])
			off, _ := strconv.ParseUint(m[2], 16, 64)
			if m[3] == "0" { // the end of a sibling list
				cur = nil
				continue
			}
			d := &readelfDIE{off: off, tag: m[4], attrs: map[string]string{}}
			if depth < len(stack) {
				stack = stack[:depth]
			}
			if depth > 0 && depth <= len(stack) {
				d.parent = stack[depth-1]
				d.parent.children = append(d.parent.children, d)
			}
			stack = append(stack[:depth], d)
			all[off] = d
			cur = d
			continue
		}
		if m := dieAttr.FindStringSubmatch(l); m != nil && cur != nil {
			cur.attrs[m[1]] = strings.TrimSpace(m[2])
		}
	}
	return all
}

// name returns a DIE's name, through DW_AT_abstract_origin or
// DW_AT_specification.
func (d *readelfDIE) name(all map[uint64]*readelfDIE) string {
	for hop := 0; d != nil && hop < 4; hop++ {
		if v, ok := d.attrs["DW_AT_name"]; ok {
			if i := strings.LastIndex(v, "): "); i >= 0 && strings.HasPrefix(v, "(") {
				return v[i+3:]
			}
			return v
		}
		ref := d.attrs["DW_AT_abstract_origin"]
		if ref == "" {
			ref = d.attrs["DW_AT_specification"]
		}
		d = all[refOff(ref)]
	}
	return ""
}

func refOff(v string) uint64 {
	v = strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
	n, _ := strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 64)
	return n
}

func hexAttr(v string) (uint64, bool) {
	f := strings.Fields(indexPrefix.ReplaceAllString(v, ""))
	if len(f) == 0 || !strings.HasPrefix(f[0], "0x") {
		return 0, false
	}
	n, err := strconv.ParseUint(f[0][2:], 16, 64)
	return n, err == nil
}

// pcRange returns a DIE's [low, high) when it has low_pc and high_pc.
func (d *readelfDIE) pcRange() (uint64, uint64, bool) {
	lo, ok1 := hexAttr(d.attrs["DW_AT_low_pc"])
	hi, ok2 := hexAttr(d.attrs["DW_AT_high_pc"])
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	if hi < lo { // a constant high_pc is the length
		hi += lo
	}
	return lo, hi, true
}

// readelfLoc is one location-list entry as readelf prints it.
type readelfLoc struct {
	lo, hi uint64
	expr   string
	// rel: readelf printed the entry's addresses as they are in the
	// list (a DW_LLE_offset_pair of clang's .debug_loclists, without
	// parentheses around the expression): offsets from the unit's base.
	rel bool
}

// readelfLocLists parses readelf --debug-dump=loc (.debug_loc or
// .debug_loclists) into lists keyed by the offset of their first entry,
// which is what DW_AT_location names.
func readelfLocLists(out string) map[uint64][]readelfLoc {
	lists := map[uint64][]readelfLoc{}
	start, pending := int64(-1), int64(-1)
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "location view pair") {
			continue
		}
		if m := locViews.FindStringSubmatch(l); m != nil {
			off, _ := strconv.ParseUint(m[1], 16, 64)
			pending = int64(off)
			continue
		}
		if m := locEnd.FindStringSubmatch(l); m != nil {
			start, pending = -1, -1
			continue
		}
		if m := locEntryRE.FindStringSubmatch(l); m != nil {
			off := pending
			if m[1] != "" {
				o, _ := strconv.ParseUint(m[1], 16, 64)
				off = int64(o)
			}
			if off < 0 {
				continue
			}
			if start < 0 {
				start = off
			}
			lo, _ := strconv.ParseUint(m[2], 16, 64)
			hi, _ := strconv.ParseUint(m[3], 16, 64)
			if m[5] != "" {
				lists[uint64(start)] = append(lists[uint64(start)], readelfLoc{lo, hi, m[5], true})
			} else {
				lists[uint64(start)] = append(lists[uint64(start)], readelfLoc{lo, hi, m[4], false})
			}
			pending = -1
		}
	}
	return lists
}

// exprAtPC returns readelf's text of a location attribute at pc: the
// expression of an exprloc, the list entry covering pc, or "" (no
// location there). ok is false for forms this test does not follow.
// base is the unit's base address (its DW_AT_low_pc), for entries
// readelf prints relative to it.
func exprAtPC(v string, lists map[uint64][]readelfLoc, pc, base uint64) (string, bool) {
	if v == "" {
		return "", true
	}
	if strings.HasSuffix(v, "(location list)") {
		off, _ := hexAttr(v)
		l, ok := lists[off]
		if !ok {
			return "", false
		}
		for _, e := range l {
			lo, hi := e.lo, e.hi
			if e.rel {
				lo, hi = lo+base, hi+base
			}
			if pc >= lo && pc < hi {
				return e.expr, true
			}
		}
		return "", true
	}
	if i := strings.Index(v, "\t("); i >= 0 && strings.HasSuffix(v, ")") {
		return v[i+2 : len(v)-1], true
	}
	return "", false
}

// Register names in readelf's DWARF expressions.
var (
	exprRegs64 = []string{"rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip"}
	exprRegs32 = []string{"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eip"}
)

// fmtExpr renders a DWARF expression as readelf does (DWARF 5 §2.5,
// §2.6; the operations GCC and rustc emit), with named DW_OP_*
// constants: "DW_OP_breg7 (rsp): 8; DW_OP_stack_value".
// unit is the offset of the expression's unit (DW_OP_GNU_parameter_ref's
// operand is relative to it; readelf shows it absolute).
func fmtExpr(b []byte, addrSize int, unit uint64) string {
	regs := exprRegs64
	if addrSize == 4 {
		regs = exprRegs32
	}
	reg := func(n uint64) string {
		if n < uint64(len(regs)) {
			return regs[n]
		}
		return fmt.Sprintf("r%d", n)
	}
	var parts []string
	for len(b) > 0 {
		op := b[0]
		b = b[1:]
		var s string
		switch {
		case op == 0x03:
			if len(b) < addrSize {
				return strings.Join(append(parts, "<truncated DW_OP_addr>"), "; ")
			}
			var a uint64
			if addrSize == 4 {
				a = uint64(binary.LittleEndian.Uint32(b))
			} else {
				a = binary.LittleEndian.Uint64(b)
			}
			b = b[addrSize:]
			s = fmt.Sprintf("DW_OP_addr: %x", a)
		case op >= 0x30 && op <= 0x4f:
			s = fmt.Sprintf("DW_OP_lit%d", op-0x30)
		case op >= 0x50 && op <= 0x6f:
			s = fmt.Sprintf("DW_OP_reg%d (%s)", op-0x50, reg(uint64(op-0x50)))
		case op >= 0x70 && op <= 0x8f:
			s = fmt.Sprintf("DW_OP_breg%d (%s): %d", op-0x70, reg(uint64(op-0x70)), sleb(&b))
		default:
			name, ok := plainOps[op]
			switch {
			case ok:
				s = name
			case op == 0x08:
				s = fmt.Sprintf("DW_OP_const1u: %d", b[0])
				b = b[1:]
			case op == 0x09:
				s = fmt.Sprintf("DW_OP_const1s: %d", int8(b[0]))
				b = b[1:]
			case op == 0x0a:
				s = fmt.Sprintf("DW_OP_const2u: %d", binary.LittleEndian.Uint16(b))
				b = b[2:]
			case op == 0x0b:
				s = fmt.Sprintf("DW_OP_const2s: %d", int16(binary.LittleEndian.Uint16(b)))
				b = b[2:]
			case op == 0x0e:
				s = fmt.Sprintf("DW_OP_const8u: %d", binary.LittleEndian.Uint64(b))
				b = b[8:]
			case op == 0x0f:
				s = fmt.Sprintf("DW_OP_const8s: %d", int64(binary.LittleEndian.Uint64(b)))
				b = b[8:]
			case op == 0x15:
				s = fmt.Sprintf("DW_OP_pick: %d", b[0])
				b = b[1:]
			case op == 0x2f || op == 0x28:
				name := "DW_OP_skip"
				if op == 0x28 {
					name = "DW_OP_bra"
				}
				s = fmt.Sprintf("%s: %d", name, int16(binary.LittleEndian.Uint16(b)))
				b = b[2:]
			case op == 0x9e:
				n, _ := uleb(&b)
				s = fmt.Sprintf("DW_OP_implicit_value %d byte block: % x", n, b[:n])
				b = b[n:]
			case op == 0x0c:
				s = fmt.Sprintf("DW_OP_const4u: %d", binary.LittleEndian.Uint32(b))
				b = b[4:]
			case op == 0x0d:
				s = fmt.Sprintf("DW_OP_const4s: %d", int32(binary.LittleEndian.Uint32(b)))
				b = b[4:]
			case op == 0x10:
				n, _ := uleb(&b)
				s = fmt.Sprintf("DW_OP_constu: %d", n)
			case op == 0x11:
				s = fmt.Sprintf("DW_OP_consts: %d", sleb(&b))
			case op == 0x23:
				n, _ := uleb(&b)
				s = fmt.Sprintf("DW_OP_plus_uconst: %d", n)
			case op == 0x91:
				s = fmt.Sprintf("DW_OP_fbreg: %d", sleb(&b))
			case op == 0x90:
				n, _ := uleb(&b)
				s = fmt.Sprintf("DW_OP_regx: %d (%s)", n, reg(n))
			case op == 0x92:
				n, _ := uleb(&b)
				s = fmt.Sprintf("DW_OP_bregx: %d (%s) %d", n, reg(n), sleb(&b))
			case op == 0x93:
				n, _ := uleb(&b)
				s = fmt.Sprintf("DW_OP_piece: %d", n)
			case op == 0x94:
				s = fmt.Sprintf("DW_OP_deref_size: %d", b[0])
				b = b[1:]
			case op == 0x9d:
				size, _ := uleb(&b)
				off, _ := uleb(&b)
				s = fmt.Sprintf("DW_OP_bit_piece: size: %d offset: %d ", size, off)
			case op == 0xa3 || op == 0xf3:
				n, _ := uleb(&b)
				name := "DW_OP_entry_value"
				if op == 0xf3 {
					name = "DW_OP_GNU_entry_value"
				}
				s = fmt.Sprintf("%s: (%s)", name, fmtExpr(b[:n], addrSize, unit))
				b = b[n:]
			case op == 0xa0 || op == 0xf2:
				name := "DW_OP_implicit_pointer"
				if op == 0xf2 {
					name = "DW_OP_GNU_implicit_pointer"
				}
				if len(b) < 4 {
					return strings.Join(append(parts, name), "; ")
				}
				die := uint64(binary.LittleEndian.Uint32(b))
				b = b[4:]
				s = fmt.Sprintf("%s: <%#x> %d", name, die, sleb(&b))
			case op == 0xfa:
				s = fmt.Sprintf("DW_OP_GNU_parameter_ref: <%#x>", unit+uint64(binary.LittleEndian.Uint32(b)))
				b = b[4:]
			default:
				return strings.Join(append(parts, fmt.Sprintf("<unknown op %#x>", op)), "; ")
			}
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

var plainOps = map[byte]string{
	0x06: "DW_OP_deref", 0x12: "DW_OP_dup", 0x13: "DW_OP_drop", 0x14: "DW_OP_over", 0x16: "DW_OP_swap",
	0x17: "DW_OP_rot", 0x19: "DW_OP_abs", 0x1a: "DW_OP_and", 0x1b: "DW_OP_div", 0x1c: "DW_OP_minus",
	0x1d: "DW_OP_mod", 0x1e: "DW_OP_mul", 0x1f: "DW_OP_neg", 0x20: "DW_OP_not", 0x21: "DW_OP_or",
	0x22: "DW_OP_plus", 0x24: "DW_OP_shl", 0x25: "DW_OP_shr", 0x26: "DW_OP_shra", 0x27: "DW_OP_xor",
	0x29: "DW_OP_eq", 0x2a: "DW_OP_ge", 0x2b: "DW_OP_gt", 0x2c: "DW_OP_le", 0x2d: "DW_OP_lt", 0x2e: "DW_OP_ne",
	0x96: "DW_OP_nop", 0x9c: "DW_OP_call_frame_cfa", 0x9f: "DW_OP_stack_value",
}

// indexedOp matches the operations whose operands point into the unit's
// tables or DIEs (DW_OP_addrx, DW_OP_convert, …).
var indexedOp = regexp.MustCompile(`DW_OP_(?:GNU_)?(?:addrx|constx|addr_index|const_index|convert|reinterpret|regval_type|deref_type|const_type)\b`)

// unitOf is the offset of the unit of the function at pc.
func unitOf(tb *Table, pc uint64) uint64 {
	u, _ := tb.UnitDIE(pc, 0)
	return u
}

// TestGoldenLocations: at every address of every function, the location
// expression vmdap picks for each parameter and local in scope (the
// expression itself, or the location-list entry that covers the
// address) and the function's frame base are readelf's, written with
// named DW_OP_* operations.
func TestGoldenLocations(t *testing.T) {
	needTool(t, "readelf")
	for _, img := range goldenImages(t) {
		t.Run(img.tag, func(t *testing.T) {
			tb := loadGolden(t, img)
			dies := readelfDIEs(runTool(t, "readelf", "--debug-dump=info", img.path))
			lists := readelfLocLists(runTool(t, "readelf", "--debug-dump=loc", img.path))
			checked, bad, skipped := 0, 0, 0
			fail := func(format string, a ...any) {
				bad++
				if bad <= 15 {
					t.Errorf(format, a...)
				}
			}
			for _, fn := range dies {
				if fn.tag != "DW_TAG_subprogram" {
					continue
				}
				lo, hi, ok := fn.pcRange()
				if !ok || lo == 0 {
					continue // declarations, abstract instances, dropped code
				}
				var base uint64 // the unit's DW_AT_low_pc
				for cu := fn; cu != nil; cu = cu.parent {
					if cu.parent == nil {
						base, _ = hexAttr(cu.attrs["DW_AT_low_pc"])
					}
				}
				for pc := lo; pc < hi; pc++ {
					sc, ok := tb.ScopeAt(pc)
					if !ok || sc.Func.Low != lo {
						fail("%#x: ScopeAt found %v, want the function at %#x", pc, sc, lo)
						continue
					}
					// The frame base.
					if want, ok := exprAtPC(fn.attrs["DW_AT_frame_base"], lists, pc, base); ok {
						checked++
						if got := fmtExpr(sc.FrameBase, sc.AddrSize, unitOf(tb, pc)); got != want {
							fail("%s %#x: frame base %q, readelf %q", fn.name(dies), pc, got, want)
						}
					}
					var walk func(d *readelfDIE)
					walk = func(d *readelfDIE) {
						for _, c := range d.children {
							switch c.tag {
							case "DW_TAG_lexical_block":
								blo, bhi, ok := c.pcRange()
								if !ok {
									skipped++ // DW_AT_ranges: not followed here
									continue
								}
								if pc >= blo && pc < bhi {
									walk(c)
								}
							case "DW_TAG_formal_parameter", "DW_TAG_variable":
								if c.tag == "DW_TAG_formal_parameter" && d != fn {
									continue
								}
								name := c.name(dies)
								want, ok := exprAtPC(c.attrs["DW_AT_location"], lists, pc, base)
								if ok && indexedOp.MatchString(want) {
									// vmdap reads these as the
									// operations they stand for
									// (addrx.go); readelf names the
									// operand's index or DIE.
									ok = false
								}
								if !ok || name == "" {
									// (a nameless parameter, as rustc gives
									// closures' argument tuples, is not shown)
									skipped++
									continue
								}
								vars := sc.Locals
								if c.tag == "DW_TAG_formal_parameter" {
									vars = sc.Params
								}
								var v *Var
								for _, x := range vars {
									if x.Name == name {
										v = x
									}
								}
								checked++
								if v == nil {
									fail("%s %#x: %s %q not in scope; readelf %q", fn.name(dies), pc, c.tag, name, want)
									continue
								}
								if got := fmtExpr(v.Loc, v.AddrSize, unitOf(tb, pc)); got != want {
									fail("%s %#x: %s: vmdap %q, readelf %q", fn.name(dies), pc, name, got, want)
								}
							}
						}
					}
					walk(fn)
				}
			}
			t.Logf("%d locations checked, %d not followed (lexical blocks with DW_AT_ranges, indexed and typed operations)", checked, skipped)
			if checked == 0 {
				t.Fatal("nothing checked")
			}
			if bad > 15 {
				t.Errorf("%d of %d locations differ", bad, checked)
			}
		})
	}
}
