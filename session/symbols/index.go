package symbols

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// The index: one pass over .debug_info at open, by as many workers as
// there are cores, that reads only the DIEs a name lookup or a PC lookup
// needs — each unit's own DIE, and the functions, variables and types
// directly inside a unit or a namespace — and jumps over everything
// else by DW_AT_sibling where the producer gave one. Per unit it also
// reads the line program's header for the unit's file names. Everything
// else is decoded per unit on first use (unitcache.go).

// nameRef points at a DIE that defines a name.
type nameRef struct {
	die uint64 // absolute .debug_info offset
	cu  int32  // index into Table.units
}

// indexPart is what one worker found.
type indexPart struct {
	funcs    []*Func
	ranges   []funcRange
	globals  map[string]nameRef
	types    map[string]nameRef
	inlined  map[string][]nameRef // functions known only as abstract instances
	dirs     map[[2]uint64]string
	strIDs   map[string]uint64
	files    map[[2]uint64]string
	scratch  []scanFrame
	pending  []pendingName
	localDef map[uint64]string // this unit's DIE offset → qualified name
	err      error
}

type scanFrame struct {
	kind   uint8
	prefix string
}

const (
	kindTop  uint8 = iota // a unit or namespace: its children are indexed
	kindSkip              // a subtree nothing is indexed in
)

// pendingName is a function whose name comes from the DIE it refers to
// (DW_AT_specification or DW_AT_abstract_origin).
type pendingName struct {
	fn  *Func
	ref uint64
}

func newPart() *indexPart {
	return &indexPart{
		globals:  map[string]nameRef{},
		types:    map[string]nameRef{},
		inlined:  map[string][]nameRef{},
		dirs:     map[[2]uint64]string{},
		strIDs:   map[string]uint64{},
		files:    map[[2]uint64]string{},
		localDef: map[uint64]string{},
	}
}

// buildIndex scans all units with up to GOMAXPROCS workers.
func (t *Table) buildIndex() {
	workers := runtime.GOMAXPROCS(0)
	if workers > len(t.units) {
		workers = len(t.units)
	}
	if workers < 1 {
		workers = 1
	}
	parts := make([]*indexPart, workers)
	unitFiles := make([][]string, len(t.units))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		p := newPart()
		parts[w] = p
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(t.units) {
					return
				}
				unitFiles[i] = t.scanUnit(p, int32(i))
			}
		}()
	}
	wg.Wait()
	t.mergeIndex(parts, unitFiles)
}

// scanUnit indexes one unit and returns its line table's file names.
func (t *Table) scanUnit(p *indexPart, ci int32) []string {
	u := t.units[ci]
	s := &t.sec
	defer func() {
		// Done with these bytes: let the pages leave the resident set.
		if s.infoOff >= 0 {
			release(t.img.m, s.infoOff+int(u.off), int(u.end-u.off))
		}
	}()
	at, err := t.abbrevs(u)
	if err != nil {
		return nil
	}
	r := rd{b: s.info[:u.end], pos: int(u.dieOff)}
	// The unit's own DIE.
	code := r.uleb()
	a := at.get(code)
	if a == nil || (a.tag != tagCompileUnit && a.tag != tagPartialUnit) {
		return nil
	}
	t.readUnitDIE(&r, a, u)
	if r.bad {
		return nil
	}
	var files []string
	if u.hasStmtList {
		if h, err := s.parseLineHeader(u.stmtList, u, (*internNamer)(p)); err == nil {
			files = h.files
		}
	}
	if !a.children {
		return files
	}
	clear(p.localDef)
	p.pending = p.pending[:0]
	stack := append(p.scratch[:0], scanFrame{kind: kindTop})
	for len(stack) > 0 && !r.eof() {
		off := uint64(r.pos)
		code := r.uleb()
		if code == 0 {
			stack = stack[:len(stack)-1]
			continue
		}
		a := at.get(code)
		if a == nil {
			break // a corrupt unit: keep what was found
		}
		parent := stack[len(stack)-1]
		if parent.kind != kindTop || !indexedTag(a.tag) {
			t.skipDIE(&r, a, u, off, &stack)
			continue
		}
		t.indexDIE(p, &r, a, u, ci, off, parent.prefix, &stack)
	}
	p.scratch = stack[:0]
	for _, pn := range p.pending {
		name, ok := p.localDef[pn.ref]
		if !ok {
			name = t.nameAt(pn.ref, u, at, 4)
		}
		pn.fn.Name = name
	}
	return files
}

func indexedTag(tag uint32) bool {
	switch tag {
	case tagSubprogram, tagVariable, tagNamespace, tagModule,
		tagBaseType, tagStructureType, tagUnionType, tagEnumerationType, tagTypedef, tagClassType:
		return true
	}
	return false
}

// skipDIE passes over a DIE's attributes, and over its children by
// DW_AT_sibling when it has one; otherwise the children are walked as a
// skipped subtree.
func (t *Table) skipDIE(r *rd, a *abbrev, u *unit, off uint64, stack *[]scanFrame) {
	if !a.children {
		if a.fixedSize >= 0 {
			r.skip(uint64(a.fixedSize))
			return
		}
		for i := range a.attrs {
			sp := &a.attrs[i]
			if sp.fixed >= 0 {
				r.skip(uint64(sp.fixed))
			} else if !r.skipForm(sp.form, u.format) {
				r.bad = true
				return
			}
		}
		return
	}
	var sib uint64
	for i := range a.attrs {
		sp := &a.attrs[i]
		if sp.at == atSibling {
			v := t.sec.readAttr(r, *sp, u)
			sib = v.u
			continue
		}
		if sp.fixed >= 0 {
			r.skip(uint64(sp.fixed))
		} else if !r.skipForm(sp.form, u.format) {
			r.bad = true
			return
		}
	}
	if sib > off && sib <= u.end && sib >= uint64(r.pos) {
		r.pos = int(sib)
		return
	}
	*stack = append(*stack, scanFrame{kind: kindSkip})
}

// dieAttrs are the attributes the index reads.
type dieAttrs struct {
	name               []byte
	low, high, ranges  attrVal
	spec, origin       attrVal
	sibling            uint64
	declaration        bool
	inline             bool
	hasLocation, hasCV bool
}

func (t *Table) readDIE(r *rd, a *abbrev, u *unit) dieAttrs {
	var d dieAttrs
	s := &t.sec
	for i := range a.attrs {
		sp := &a.attrs[i]
		switch sp.at {
		case atName:
			d.name = s.readAttr(r, *sp, u).b
		case atLowpc:
			d.low = s.readAttr(r, *sp, u)
		case atHighpc:
			d.high = s.readAttr(r, *sp, u)
		case atRanges:
			d.ranges = s.readAttr(r, *sp, u)
		case atSpecification:
			d.spec = s.readAttr(r, *sp, u)
		case atAbstractOrigin:
			d.origin = s.readAttr(r, *sp, u)
		case atSibling:
			d.sibling = s.readAttr(r, *sp, u).u
		case atDeclaration:
			d.declaration = s.readAttr(r, *sp, u).u != 0
		case atInline:
			v := s.readAttr(r, *sp, u)
			d.inline = v.u == 1 || v.u == 3 // DW_INL_inlined, DW_INL_declared_inlined
		case atLocation:
			d.hasLocation = true
			if sp.fixed >= 0 {
				r.skip(uint64(sp.fixed))
			} else {
				r.skipForm(sp.form, u.format)
			}
		case atConstValue:
			d.hasCV = true
			r.skipForm(sp.form, u.format)
		default:
			if sp.fixed >= 0 {
				r.skip(uint64(sp.fixed))
			} else if !r.skipForm(sp.form, u.format) {
				r.bad = true
			}
		}
	}
	return d
}

// indexDIE records one DIE directly inside a unit or namespace.
func (t *Table) indexDIE(p *indexPart, r *rd, a *abbrev, u *unit, ci int32, off uint64, prefix string, stack *[]scanFrame) {
	d := t.readDIE(r, a, u)
	if r.bad {
		return
	}
	qualify := func(n []byte) string {
		if prefix == "" {
			return string(n)
		}
		return prefix + "::" + string(n)
	}
	switch a.tag {
	case tagNamespace, tagModule:
		name := "{anonymous}"
		if len(d.name) > 0 {
			name = string(d.name)
		}
		if prefix != "" {
			name = prefix + "::" + name
		}
		if a.children {
			*stack = append(*stack, scanFrame{kind: kindTop, prefix: name})
		}
		return
	case tagSubprogram:
		name := ""
		if len(d.name) > 0 {
			name = qualify(d.name)
			p.localDef[off] = name
		}
		switch {
		case d.declaration:
		case d.low.ok || d.ranges.ok:
			fn := &Func{Name: name, die: off, cu: ci}
			if d.low.ok {
				fn.Low = d.low.u
				fn.High = fn.Low
				if d.high.ok {
					fn.High = highPC(d.high, fn.Low)
				}
			}
			if d.ranges.ok {
				rs := t.sec.rangesOf(d.ranges, u)
				for _, rg := range rs {
					p.ranges = append(p.ranges, funcRange{rg[0], rg[1], fn})
				}
				if len(rs) > 0 {
					fn.Low, fn.High = rs[0][0], rs[0][1]
					for _, rg := range rs {
						fn.Low, fn.High = min(fn.Low, rg[0]), max(fn.High, rg[1])
					}
				}
			} else if fn.High > fn.Low {
				p.ranges = append(p.ranges, funcRange{fn.Low, fn.High, fn})
			}
			if name == "" {
				ref := d.origin
				if !ref.ok {
					ref = d.spec
				}
				if ref.ok {
					p.pending = append(p.pending, pendingName{fn, ref.u})
				}
			}
			p.funcs = append(p.funcs, fn)
		case d.inline && name != "":
			p.inlined[name] = append(p.inlined[name], nameRef{off, ci})
		}
	case tagVariable:
		name := ""
		if len(d.name) > 0 {
			name = qualify(d.name)
			p.localDef[off] = name
		} else if d.spec.ok {
			name = p.localDef[d.spec.u]
			if name == "" {
				at, _ := t.abbrevs(u)
				name = t.nameAt(d.spec.u, u, at, 4)
			}
		}
		if name != "" && !d.declaration && (d.hasLocation || d.hasCV) {
			if _, dup := p.globals[name]; !dup {
				p.globals[name] = nameRef{off, ci}
			}
		}
	default: // types
		if len(d.name) > 0 && !d.declaration {
			if prefix == "" {
				// A map lookup by a converted []byte does not allocate:
				// most of a kernel's types repeat in every unit.
				if _, seen := p.types[string(d.name)]; !seen {
					p.types[string(d.name)] = nameRef{off, ci}
				}
			} else if name := qualify(d.name); p.types[name] == (nameRef{}) {
				p.types[name] = nameRef{off, ci}
			}
		}
	}
	if a.children {
		if d.sibling > off && d.sibling <= u.end && d.sibling >= uint64(r.pos) {
			r.pos = int(d.sibling)
		} else {
			*stack = append(*stack, scanFrame{kind: kindSkip})
		}
	}
}

// nameAt reads the name of the DIE at off in unit u, following
// DW_AT_specification and DW_AT_abstract_origin up to hops times.
func (t *Table) nameAt(off uint64, u *unit, at *abbrevTable, hops int) string {
	if at == nil || off < u.dieOff || off >= u.end || hops <= 0 {
		return ""
	}
	r := rd{b: t.sec.info[:u.end], pos: int(off)}
	a := at.get(r.uleb())
	if a == nil {
		return ""
	}
	d := t.readDIE(&r, a, u)
	switch {
	case len(d.name) > 0:
		return string(d.name)
	case d.origin.ok:
		return t.nameAt(d.origin.u, u, at, hops-1)
	case d.spec.ok:
		return t.nameAt(d.spec.u, u, at, hops-1)
	}
	return ""
}

// readUnitDIE reads the attributes of a unit's own DIE into u.
func (t *Table) readUnitDIE(r *rd, a *abbrev, u *unit) {
	s := &t.sec
	var strxName, strxDir attrVal
	var lowForm uint32
	var lowIdx int64
	for i := range a.attrs {
		sp := &a.attrs[i]
		// The bases come first in practice, but a strx or addrx form may
		// precede its base: read those again below.
		v := s.readAttr(r, *sp, u)
		switch sp.at {
		case atName:
			u.name = string(v.b)
			if isStrx(v.form) {
				strxName = v
			}
		case atCompDir:
			u.compDir = string(v.b)
			if isStrx(v.form) {
				strxDir = v
			}
		case atProducer:
			u.producer = string(v.b)
		case atLanguage:
			u.lang = v.u
		case atStmtList:
			u.stmtList, u.hasStmtList = v.u, true
		case atLowpc:
			u.lowPC = v.u
			lowForm, lowIdx = v.form, v.s
		case atHighpc:
			u.highPC = v
		case atRanges:
			u.rangesAttr = v
		case atStrOffsetsBase:
			u.strOffBase = v.u
		case atAddrBase, atGNUAddrBase:
			u.addrBase = v.u
		case atRnglistsBase, atGNURangesBase:
			u.rngBase = v.u
		case atLoclistsBase:
			u.locBase = v.u
		}
	}
	// Indexed strings and addresses read before their base: again.
	if strxName.ok {
		u.name = string(s.strx(strxName.u, u))
	}
	if strxDir.ok {
		u.compDir = string(s.strx(strxDir.u, u))
	}
	if isAddrx(lowForm) {
		u.lowPC = s.addrx(uint64(lowIdx), u)
	}
}

func isAddrx(form uint32) bool {
	return form == formAddrx || (form >= formAddrx1 && form <= formAddrx4) || form == formGNUAddrIndex
}

func isStrx(form uint32) bool {
	return form == formStrx || (form >= formStrx1 && form <= formStrx4) || form == formGNUStrIndex
}

// internNamer shares directory and file-name strings among the units one
// worker reads: a kernel's 2,400 units name 400,000 files, most of them
// the same few thousand headers. Entries named by string-section offset
// are keyed by that offset and the directory they are relative to.
type internNamer indexPart

func (n *internNamer) id(s string) uint64 {
	if v, ok := n.strIDs[s]; ok {
		return v
	}
	v := uint64(len(n.strIDs) + 1)
	n.strIDs[s] = v
	return v
}

func (n *internNamer) dir(compDir string, raw []byte, strOff uint64, isStrp bool) string {
	if !isStrp {
		return joinDir(compDir, string(raw))
	}
	k := [2]uint64{strOff, n.id(compDir)}
	if d, ok := n.dirs[k]; ok {
		return d
	}
	d := joinDir(compDir, string(raw))
	n.dirs[k] = d
	return d
}

func (n *internNamer) file(dir string, _ int, raw []byte, strOff uint64, isStrp bool) string {
	if !isStrp {
		return joinFile(dir, string(raw))
	}
	k := [2]uint64{strOff, n.id(dir)}
	if f, ok := n.files[k]; ok {
		return f
	}
	f := joinFile(dir, string(raw))
	n.files[k] = f
	return f
}
