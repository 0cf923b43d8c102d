package symbols

import (
	"encoding/binary"
	"runtime"
	"sync"
	"sync/atomic"
)

// The index: one pass over .debug_info at open, by as many workers as
// there are cores, that reads only the DIEs a name lookup or a PC lookup
// needs — each unit's own DIE, the functions, variables and types
// directly inside a unit or a namespace, and the enumerators of the
// enumerations directly inside a unit — and jumps over everything
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
	funcs   []*Func
	ranges  []funcRange
	globals []namedRef
	types   map[string]nameRef
	// typeSeen marks the .debug_str offsets of type names already
	// indexed: a kernel's units repeat the same thousands of types, and a
	// bit test is cheaper than hashing each name.
	typeSeen []uint64
	typeRefs []typeRef
	inlined  []inlineRef       // functions known only as abstract instances
	abstract []inlineRef       // functions without code nor DW_AT_inline
	unplaced []namedRef        // global variables defined without a location
	dirs     map[uint64]string // by nameKey
	strIDs   map[string]uint64
	files    map[uint64]string // by nameKey
	scratch  []scanFrame
	pending  []pendingName
	// crossFuncs and crossVars: functions, and variables with a
	// location, named by a DIE in another unit (GCC's -flto unit: by
	// DW_AT_abstract_origin in the early debug information), named once
	// all units are read (resolveCross).
	crossFuncs []pendingName
	crossVars  []pendingVar
	localDef   map[uint64]string // this unit's DIE offset → qualified name (in namespaces)
	abbrevs    *abbrevTable      // reused for each unit
	die        dieAttrs          // the DIE being indexed
	slab       funcSlab
	dirIDs     []uint64 // the current line header's directories' ids
	err        error

	// enumSeen, enumRefs and enumNames: the enumerators of the
	// enumerations directly inside a unit, by name (the .debug_str
	// offset of a DW_FORM_strp one's, marked in enumSeen), each with its
	// enumeration's DIE, once a worker.
	enumSeen  []uint64
	enumRefs  []typeRef
	enumNames map[string]nameRef
}

type scanFrame struct {
	kind   uint8
	prefix string
	die    uint64 // kindEnum: the enumeration's DIE
}

const (
	kindTop  uint8 = iota // a unit or namespace: its children are indexed
	kindSkip              // a subtree nothing is indexed in
	kindEnum              // an enumeration at the top of a unit: its enumerators are indexed
)

// namedRef is a DIE and its name.
type namedRef struct {
	name string
	ref  nameRef
}

// inlineRef is an abstract instance (an inline function's DIE), named by
// its name attribute's string offset or bytes: thousands of headers'
// inline functions repeat in every unit, so the names are made strings
// only when first looked up.
type inlineRef struct {
	form   uint32
	strOff uint64
	name   []byte // DW_FORM_string or strx: the bytes
	ref    nameRef
}

// strsOf returns the string section a name of that form is at:
// .debug_line_str for DW_FORM_line_strp, else .debug_str.
func (t *Table) strsOf(form uint32) []byte {
	if form == formLineStrp {
		return t.sec.lineStr
	}
	return t.sec.str
}

// typeRef is a type named by a .debug_str offset.
type typeRef struct {
	strOff uint64
	ref    nameRef
}

// pendingName is a function whose name comes from the DIE it refers to
// (DW_AT_specification or DW_AT_abstract_origin).
type pendingName struct {
	fn  *Func
	ref uint64
}

// pendingVar is a global variable whose name comes from the DIE at ref,
// in another unit.
type pendingVar struct {
	ref uint64
	v   nameRef
}

// newFunc allocates a Func from the part's slab.
func (p *indexPart) newFunc() *Func { return p.slab.next() }

// funcSlab allocates Funcs a chunk at a time, chunks growing from 16 to
// 1024: a kernel's 100,000 functions take a hundred allocations, a small
// guest's twenty one small one (a chunk of 1024 was 64 KB to clear for
// each of its opens, and doubled its open's time).
type funcSlab struct {
	free []Func
	size int
}

func (s *funcSlab) next() *Func {
	if len(s.free) == 0 {
		s.size = min(max(2*s.size, 16), 1024)
		s.free = make([]Func, s.size)
	}
	f := &s.free[0]
	s.free = s.free[1:]
	return f
}

// newPart returns a worker's part of the index, for share bytes of
// .debug_info. Its lists start at about the size a kernel's DWARF fills
// for that much (GCC 12's vmlinux: a function or a global per 4 KB, an
// abstract inline instance per 1.6 KB), so a large image's are not copied
// as they grow (7% of a kernel's open); a small image's grow from empty.
func newPart(share int) *indexPart {
	p := &indexPart{
		types:    make(map[string]nameRef, min(1<<15, share>>12)), // sized to the image: a kernel has ~10⁵ type names
		dirs:     map[uint64]string{},
		strIDs:   map[string]uint64{},
		files:    map[uint64]string{},
		localDef: map[uint64]string{},
	}
	if share >= 1<<22 {
		p.funcs = make([]*Func, 0, share>>12)
		p.ranges = make([]funcRange, 0, share>>12)
		p.globals = make([]namedRef, 0, share>>12)
		p.inlined = make([]inlineRef, 0, share/1536)
	}
	return p
}

// buildIndex scans all units with up to GOMAXPROCS workers.
func (t *Table) buildIndex() {
	workers := runtime.GOMAXPROCS(0)
	if len(t.sec.info) < 1<<22 {
		workers = 1 // a small image: not worth a goroutine
	}
	if workers > len(t.units) {
		workers = len(t.units)
	}
	if workers < 1 {
		workers = 1
	}
	parts := make([]*indexPart, workers)
	unitFiles := make([][]string, len(t.units))
	var next, done atomic.Int64
	var wg sync.WaitGroup
	var pmu sync.Mutex // guards lastPct, so the progress callback sees percentages in order
	total := int64(len(t.sec.info))
	lastPct := int64(-1)
	report := func(n int64) {
		d := done.Add(n)
		if t.progress == nil || total == 0 {
			return
		}
		pct := d * 100 / total
		pmu.Lock()
		if pct > lastPct {
			lastPct = pct
			t.progress(d, total)
		}
		pmu.Unlock()
	}
	rel := t.newInfoReleaser()
	for w := 0; w < workers; w++ {
		p := newPart(len(t.sec.info) / workers)
		p.typeSeen = make([]uint64, (len(t.sec.str)+63)/64)
		p.enumSeen = make([]uint64, (len(t.sec.str)+63)/64)
		parts[w] = p
		wg.Add(1)
		work := func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(t.units) || t.ctxErr() != nil {
					return
				}
				unitFiles[i] = t.scanUnit(p, int32(i))
				rel.done(i)
				report(int64(t.units[i].end - t.units[i].off))
			}
		}
		if workers == 1 {
			work()
		} else {
			go work()
		}
	}
	wg.Wait()
	for _, u := range t.units {
		t.crossRefs = t.crossRefs || u.refs&refsAddr != 0
	}
	t.resolveCross(parts)
	if t.debugNames != nil {
		p := newPart(len(t.sec.info))
		p.typeSeen = make([]uint64, (len(t.sec.str)+63)/64)
		if !t.indexFromNames(p) {
			// Unusable: walk the units after all.
			t.debugNames = nil
			next.Store(0)
			t.buildIndex()
			return
		}
		t.resolveCross([]*indexPart{p})
		parts = append(parts, p)
		t.usedNames = true
	}
	t.mergeIndex(parts, unitFiles)
}

// infoReleaser lets the pages of .debug_info the index has read leave the
// resident set (they stay in the page cache), which keeps a kernel's open
// to a few megabytes of its 200 MB .debug_info at a time. It releases
// only the prefix of units all done, in spans of at least releaseSpan:
// a release per unit (a kernel has 2,900) cost a tenth of the open, much
// of it in the other cores' TLB flushes that each call makes.
type infoReleaser struct {
	t    *Table
	mu   sync.Mutex // guards read, next and from (the workers report units as they finish)
	read []bool
	next int    // the first unit not done
	from uint64 // .debug_info is released below this offset
}

const releaseSpan = 16 << 20

func (t *Table) newInfoReleaser() *infoReleaser {
	return &infoReleaser{t: t, read: make([]bool, len(t.units))}
}

// done records that unit i was read, and releases what it can.
func (r *infoReleaser) done(i int) {
	t := r.t
	if t.sec.infoOff < 0 {
		return // not mapped
	}
	r.mu.Lock()
	r.read[i] = true
	for r.next < len(r.read) && r.read[r.next] {
		r.next++
	}
	upTo := uint64(len(t.sec.info))
	if r.next < len(t.units) {
		upTo = t.units[r.next].off
	}
	from := r.from
	if upTo-from < releaseSpan && r.next < len(t.units) {
		r.mu.Unlock()
		return
	}
	r.from = upTo
	r.mu.Unlock()
	release(t.dimg.m, t.sec.infoOff+int(from), int(upTo-from))
}

// scanUnit indexes one unit and returns its line table's file names.
func (t *Table) scanUnit(p *indexPart, ci int32) []string {
	u := t.units[ci]
	s := &t.sec
	at, err := t.abbrevs(p.abbrevs, u)
	if err != nil {
		return nil
	}
	p.abbrevs = at
	u.refs = at.refs
	r := rd{b: s.info[:u.end], pos: int(u.dieOff)}
	// The unit's own DIE.
	code := r.uleb()
	a := at.get(code)
	if a == nil || (a.tag != tagCompileUnit && a.tag != tagPartialUnit && a.tag != tagSkeletonUnit) {
		return nil // (a skeleton unit: its line table, when its split unit is not read)
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
	if !a.children || t.debugNames != nil {
		return files // (with .debug_names, the names come from there)
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
		if parent.kind == kindEnum {
			t.indexEnumerator(p, &r, a, u, ci, off, parent.die, &stack)
			continue
		}
		if parent.kind != kindTop || !a.indexed {
			t.skipDIE(&r, a, u, off, &stack)
			continue
		}
		// (An enumeration is not passed over, named or not: its
		// enumerators are indexed, see indexDIE.)
		enum := a.tag == tagEnumerationType && a.children
		if parent.prefix == "" && !enum && (a.decl || a.typeName >= 0) && passOver(p, &r, a, u, off, &stack) {
			continue
		}
		t.indexDIE(p, &r, a, at, u, ci, off, parent.prefix, &stack)
	}
	p.scratch = stack[:0]
	for _, pn := range p.pending {
		name, ok := p.localDef[pn.ref]
		if !ok {
			var next uint64
			if name, next, ok = t.nameAt(pn.ref, u, at, 4); !ok {
				// Named in another unit: once all are read.
				p.crossFuncs = append(p.crossFuncs, pendingName{pn.fn, next})
				continue
			}
		}
		pn.fn.Name = name
	}
	return files
}

// passOver passes over, without decoding it, a DIE the index would find
// nothing new in (as indexDIE would, at the top of a unit): a declaration
// (a header's prototypes and externs: most of a kernel unit's DIEs at
// its top), or a named type this worker indexed already (most of a
// kernel's types repeat in every unit that includes their header). It
// reports false, having read nothing, for any other.
func passOver(p *indexPart, r *rd, a *abbrev, u *unit, off uint64, stack *[]scanFrame) bool {
	base := r.pos
	if base+a.fixedSize > len(r.b) {
		return false
	}
	if !a.decl {
		var name uint64
		if u.format.offSize == 8 {
			name = binary.LittleEndian.Uint64(r.b[base+int(a.typeName):])
		} else {
			name = uint64(binary.LittleEndian.Uint32(r.b[base+int(a.typeName):]))
		}
		if name >= uint64(len(p.typeSeen))*64 || p.typeSeen[name/64]&(1<<(name%64)) == 0 {
			return false
		}
	}
	r.pos = base + a.fixedSize
	if a.children {
		sib := u.off + uint64(binary.LittleEndian.Uint32(r.b[base+int(a.sibAt):]))
		if sib > off && sib <= u.end && sib >= uint64(r.pos) {
			r.pos = int(sib)
		} else {
			*stack = append(*stack, scanFrame{kind: kindSkip})
		}
	}
	return true
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
			sib = t.sec.readCval(r, sp, u).u
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
	nameForm           uint32
	nameOff            uint64
	hasName            bool
	low, high, ranges  cval
	spec, origin       cval
	sibling            uint64
	declaration        bool
	inline             bool
	hasLocation, hasCV bool
	enumClass          bool
}

func (t *Table) readDIE(r *rd, a *abbrev, u *unit, d *dieAttrs) {
	*d = dieAttrs{}
	s := &t.sec
	for i := range a.attrs {
		sp := &a.attrs[i]
		switch sp.at {
		case atName:
			if sp.form == formStrp {
				// The bytes are looked up only if needed (a type seen
				// before is known by its offset).
				d.nameForm, d.nameOff, d.hasName = formStrp, r.uN(u.format.offSize), true
				continue
			}
			v := s.readAttr(r, *sp, u)
			d.name, d.nameForm, d.nameOff = v.b, v.form, v.u
			d.hasName = len(v.b) > 0
		case atLowpc:
			d.low = s.readCval(r, sp, u)
		case atHighpc:
			d.high = s.readCval(r, sp, u)
		case atRanges:
			d.ranges = s.readCval(r, sp, u)
		case atSpecification:
			d.spec = s.readCval(r, sp, u)
		case atAbstractOrigin:
			d.origin = s.readCval(r, sp, u)
		case atSibling:
			d.sibling = s.readCval(r, sp, u).u
		case atDeclaration:
			d.declaration = s.readCval(r, sp, u).u != 0
		case atInline:
			v := s.readCval(r, sp, u)
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
		case atEnumClass:
			d.enumClass = s.readCval(r, sp, u).u != 0
		default:
			if sp.fixed >= 0 {
				r.skip(uint64(sp.fixed))
			} else if !r.skipForm(sp.form, u.format) {
				r.bad = true
			}
		}
	}
}

// indexDIE records one DIE directly inside a unit or namespace.
func (t *Table) indexDIE(p *indexPart, r *rd, a *abbrev, at *abbrevTable, u *unit, ci int32, off uint64, prefix string, stack *[]scanFrame) {
	d := &p.die
	t.readDIE(r, a, u, d)
	if r.bad {
		return
	}
	if d.hasName && d.name == nil {
		// Types and abstract instances of inline functions (both repeat
		// in every unit) are known by their name's offset until needed.
		lazy := false
		switch a.tag {
		case tagNamespace, tagModule, tagVariable:
		case tagSubprogram:
			lazy = d.inline && !d.low.ok && !d.ranges.ok
		default:
			lazy = true
		}
		if !lazy || prefix != "" {
			d.name = cstrAt(t.sec.str, d.nameOff)
		}
	}
	qualify := func() string {
		if prefix == "" {
			return t.sec.dieName(d)
		}
		return prefix + "::" + string(d.name)
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
		if d.hasName && !(d.inline && !d.low.ok && !d.ranges.ok && prefix == "") {
			name = qualify()
			if prefix != "" {
				p.localDef[off] = name
			}
		}
		switch {
		case d.declaration:
		case d.low.ok || d.ranges.ok:
			fn := p.newFunc()
			fn.Name, fn.die, fn.cu = name, off, ci
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
		case d.hasName:
			ir := inlineRef{form: d.nameForm, strOff: d.nameOff, ref: nameRef{off, ci}}
			if prefix != "" {
				ir.name = []byte(name)
				ir.form = formString
			} else if d.nameForm != formStrp && d.nameForm != formLineStrp {
				ir.name = d.name
			}
			if d.inline {
				p.inlined = append(p.inlined, ir)
			} else {
				// A function without code that does not say it was
				// inlined: GCC's early debug information says nothing
				// of inlining, which the -flto unit does (see
				// mergeIndex).
				p.abstract = append(p.abstract, ir)
			}
		}
	case tagVariable:
		name := ""
		if len(d.name) > 0 {
			name = qualify()
			if prefix != "" {
				p.localDef[off] = name
			}
		} else if ref := d.spec; ref.ok || d.origin.ok {
			if !ref.ok {
				ref = d.origin // (GCC's -flto unit's definitions)
			}
			name = p.localDef[ref.u]
			if name == "" {
				var next uint64
				var ok bool
				if name, next, ok = t.nameAt(ref.u, u, at, 4); !ok && !d.declaration && (d.hasLocation || d.hasCV) {
					p.crossVars = append(p.crossVars, pendingVar{next, nameRef{off, ci}})
				}
			}
		}
		switch {
		case name == "" || d.declaration:
		case d.hasLocation || d.hasCV:
			p.globals = append(p.globals, namedRef{name, nameRef{off, ci}})
		case prefix == "":
			// A definition without a location: the -flto unit defines
			// what the optimizer kept (see mergeNames).
			p.unplaced = append(p.unplaced, namedRef{name, nameRef{off, ci}})
		}
	default: // types
		if d.hasName && !d.declaration {
			if prefix == "" && d.nameForm == formStrp && d.nameOff < uint64(len(p.typeSeen))*64 {
				w, bit := d.nameOff/64, uint64(1)<<(d.nameOff%64)
				if p.typeSeen[w]&bit == 0 {
					p.typeSeen[w] |= bit
					p.typeRefs = append(p.typeRefs, typeRef{d.nameOff, nameRef{off, ci}})
				}
			} else if prefix == "" {
				// A map lookup by a converted []byte does not allocate:
				// most of a kernel's types repeat in every unit.
				if _, seen := p.types[string(d.name)]; !seen {
					p.types[string(d.name)] = nameRef{off, ci}
				}
			} else if name := qualify(); p.types[name] == (nameRef{}) {
				p.types[name] = nameRef{off, ci}
			}
		}
	}
	switch {
	case !a.children:
	case u.lang == langRust && prefix != "" && len(d.name) > 0 &&
		(a.tag == tagStructureType || a.tag == tagUnionType || a.tag == tagEnumerationType || a.tag == tagClassType):
		// rustc (1.63, Debian 12's) defines a type's methods inside its
		// DIE: index them as the type's, as namespaces' are.
		*stack = append(*stack, scanFrame{kind: kindTop, prefix: qualify()})
	case a.tag == tagEnumerationType && prefix == "" && !d.declaration && !d.enumClass && u.lang != langRust:
		// Every enumeration's enumerators are read, even where this
		// worker read an enumeration of the same name, or of the same
		// first enumerator, in another unit: C's enumerations local to a
		// file share both (a kernel's many enum { Opt_uid, Opt_gid, ... }
		// of mount options, its two enum energy_perf_value_index), and
		// which of them a worker met first depended on the scheduling,
		// so that each open of a kernel missed another 10 to 30 of its
		// 16,950 enumerator names. Reading them all costs no time that
		// shows in a kernel's open (each name is recorded once a
		// worker, by its string's offset).
		*stack = append(*stack, scanFrame{kind: kindEnum, die: off})
	case d.sibling > off && d.sibling <= u.end && d.sibling >= uint64(r.pos):
		r.pos = int(d.sibling)
	default:
		*stack = append(*stack, scanFrame{kind: kindSkip})
	}
}

// indexEnumerator records one child of an enumeration at the top of a
// unit (whose DIE is at enum).
func (t *Table) indexEnumerator(p *indexPart, r *rd, a *abbrev, u *unit, ci int32, off, enum uint64, stack *[]scanFrame) {
	if a.tag != tagEnumerator {
		t.skipDIE(r, a, u, off, stack)
		return
	}
	d := &p.die
	t.readDIE(r, a, u, d)
	if r.bad || !d.hasName {
		return
	}
	if a.children {
		*stack = append(*stack, scanFrame{kind: kindSkip})
	}
	ref := nameRef{enum, ci}
	if d.nameForm == formStrp {
		w, bit := d.nameOff/64, uint64(1)<<(d.nameOff%64)
		if w < uint64(len(p.enumSeen)) && p.enumSeen[w]&bit == 0 {
			p.enumSeen[w] |= bit
			p.enumRefs = append(p.enumRefs, typeRef{d.nameOff, ref})
		}
		return
	}
	if _, seen := p.enumNames[string(d.name)]; !seen {
		if p.enumNames == nil {
			p.enumNames = map[string]nameRef{}
		}
		p.enumNames[string(d.name)] = ref
	}
}

// nameAt reads the name of the DIE at off in unit u, following
// DW_AT_specification and DW_AT_abstract_origin up to hops times. It
// reports false, with the offset to go on from, when a reference leaves
// the unit.
func (t *Table) nameAt(off uint64, u *unit, at *abbrevTable, hops int) (string, uint64, bool) {
	for ; hops > 0 && at != nil; hops-- {
		if off < u.dieOff || off >= u.end {
			return "", off, false
		}
		r := rd{b: t.sec.info[:u.end], pos: int(off)}
		a := at.get(r.uleb())
		if a == nil {
			break
		}
		var d dieAttrs
		t.readDIE(&r, a, u, &d)
		switch {
		case d.hasName:
			return t.sec.nameOf(&d), 0, true
		case d.origin.ok:
			off = d.origin.u
		case d.spec.ok:
			off = d.spec.u
		default:
			return "", 0, true
		}
	}
	return "", 0, true
}

// resolveCross names what the workers found named in other units, now
// that every unit's attributes are read.
func (t *Table) resolveCross(parts []*indexPart) {
	tabs := abbrevCache{}
	name := func(off uint64) string {
		for hops := 0; hops < 4; hops++ {
			ci := t.unitOf(off)
			if ci < 0 {
				return ""
			}
			u := t.units[ci]
			n, next, ok := t.nameAt(off, u, tabs.get(t, u.abbrevOff, u.format), 4)
			if ok {
				return n
			}
			off = next
		}
		return ""
	}
	for _, p := range parts {
		for _, pn := range p.crossFuncs {
			pn.fn.Name = name(pn.ref)
		}
		for _, pv := range p.crossVars {
			if n := name(pv.ref); n != "" {
				p.globals = append(p.globals, namedRef{n, pv.v})
			}
		}
		p.crossFuncs, p.crossVars = nil, nil
	}
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
			u.highPC = v.c()
		case atRanges:
			u.rangesAttr = v.c()
		case atStrOffsetsBase:
			u.strOffBase = v.u
		case atAddrBase, atGNUAddrBase:
			u.addrBase = v.u
		case atRnglistsBase, atGNURangesBase:
			u.rngBase = v.u
		case atLoclistsBase:
			u.locBase = v.u
		case atGNUDWOName:
			u.gnuSplit = true
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

// nameKey packs a name's string offset (its top bit set for .debug_str,
// clear for .debug_line_str) and the id of the directory it is relative
// to into one key (an integer key is hashed faster than a pair), when
// both fit: always, but for a string section over 256 GB or 16 million
// distinct directories, whose names are then not shared.
func nameKey(strOff, id uint64) (uint64, bool) {
	off := strOff &^ (1 << 63)
	if off >= 1<<38 || id >= 1<<24 {
		return 0, false
	}
	return off<<25 | strOff>>63<<24 | id, true
}

func (n *internNamer) begin(dir0 string, given bool) {
	n.dirIDs = n.dirIDs[:0]
	if given {
		n.dirIDs = append(n.dirIDs, n.id(dir0))
	}
}

func (n *internNamer) dir(compDir string, raw []byte, strOff uint64, isStrp bool) string {
	var d string
	if !isStrp {
		d = joinDir(compDir, string(raw))
	} else if k, ok := nameKey(strOff, n.id(compDir)); !ok {
		d = joinDir(compDir, string(raw))
	} else if d, ok = n.dirs[k]; !ok {
		d = joinDir(compDir, string(raw))
		n.dirs[k] = d
	}
	n.dirIDs = append(n.dirIDs, n.id(d))
	return d
}

func (n *internNamer) file(dir string, dirIdx int, raw []byte, strOff uint64, isStrp bool) string {
	if !isStrp || dirIdx < 0 || dirIdx >= len(n.dirIDs) {
		return joinFile(dir, string(raw))
	}
	k, ok := nameKey(strOff, n.dirIDs[dirIdx])
	if !ok {
		return joinFile(dir, string(raw))
	}
	if f, ok := n.files[k]; ok {
		return f
	}
	f := joinFile(dir, string(raw))
	n.files[k] = f
	return f
}
