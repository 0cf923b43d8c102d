package symbols

import (
	"debug/dwarf"
	"debug/elf"
	"slices"
	"sort"
)

// unitState is what has been decoded of one unit: its own debug/dwarf
// view (entries and types; with the unit's bytes alone as .debug_info
// for most units, with what it refers to for some: see typeunits.go),
// its line rows, and its globals. A bounded LRU cache keeps the most
// recently used. A negative index below -1 stands for a type unit
// (tuRef), whose view holds only its type.
type unitState struct {
	ci      int32
	data    *dwarf.Data
	dataErr error
	// base is the .debug_info offset that offset 0 of data stands for
	// (an offset in data is base less): the unit's own offset when data
	// begins with the unit, 0 in the view of all of .debug_info.
	base    uint64
	tuTypes []dwarf.Offset // in data, the types of the type units the unit refers to
	rows    []row          // sorted by address
	rowsOK  bool
	globals []*Var
	globOK  bool
	enums   map[string]dwarf.Offset // see unitEnums; nil: not yet read
	calls   map[uint64][]CallSite   // by function DIE
	// Rust units: structure types by name, and what was found per type.
	rustIdx   rustIndex
	rustTypes map[dwarf.Type]*RustType
	cost      int // rows + a fixed weight: what the LRU bounds
	prev      *unitState
	next      *unitState
}

// Cache bounds: about 64 MB of rows and decoded types (a unit's view is
// charged for the types it may decode, viewBytesPerInfoByte), and at
// most maxCachedUnits units.
const (
	maxCachedCost  = 2 << 20
	maxCachedUnits = 256
	unitWeight     = 4096
	// viewBytesPerInfoByte estimates the memory of a unit's decoded
	// types per byte of its .debug_info.
	viewBytesPerInfoByte = 8
)

type unitCache struct {
	m          map[int32]*unitState
	head, tail *unitState // most recent first
	cost       int
	// dropped is the cost of every unit the cache has let go since the
	// table was made (evicted, or emptied by init): what holders of a
	// unit's types outside the cache compare to know when the cache has
	// turned over (EvictedCost).
	dropped uint64
}

// CacheCost is the unit cache's bound, in the units of EvictedCost.
const CacheCost = maxCachedCost

// init empties the cache (SetSlide: every decoded unit goes), its LRU
// list and cost too: left, eviction would delete a new state of the same
// unit through a stale one.
func (c *unitCache) init() {
	c.dropped += uint64(c.cost)
	c.m, c.head, c.tail, c.cost = map[int32]*unitState{}, nil, nil, 0
}

// get returns the state of unit ci, created and made most recent.
// Caller holds Table.mu.
func (c *unitCache) get(ci int32) *unitState {
	if st, ok := c.m[ci]; ok {
		c.unlink(st)
		c.pushFront(st)
		return st
	}
	st := &unitState{ci: ci, cost: unitWeight}
	c.m[ci] = st
	c.cost += st.cost
	c.pushFront(st)
	c.evict(st)
	return st
}

// grew records that st holds more (rows decoded) and evicts others.
func (c *unitCache) grew(st *unitState, by int) {
	st.cost += by
	c.cost += by
	c.evict(st)
}

func (c *unitCache) evict(keep *unitState) {
	for (c.cost > maxCachedCost || len(c.m) > maxCachedUnits) && c.tail != nil && c.tail != keep {
		old := c.tail
		c.unlink(old)
		delete(c.m, old.ci)
		c.cost -= old.cost
		c.dropped += uint64(old.cost)
	}
}

// EvictedCost is the cost of the units the table's cache has let go
// since it was made (see CacheCost): a cache of things made from the
// units' types (their debug/dwarf types) holds units the table no longer
// does, and once this has grown by CacheCost, about a whole cache's worth.
func (t *Table) EvictedCost() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cache.dropped
}

func (c *unitCache) unlink(st *unitState) {
	if st.prev != nil {
		st.prev.next = st.next
	} else {
		c.head = st.next
	}
	if st.next != nil {
		st.next.prev = st.prev
	} else {
		c.tail = st.prev
	}
	st.prev, st.next = nil, nil
}

func (c *unitCache) pushFront(st *unitState) {
	st.next = c.head
	if c.head != nil {
		c.head.prev = st
	}
	c.head = st
	if c.tail == nil {
		c.tail = st
	}
}

// unitData returns unit ci's debug/dwarf view. Caller holds t.mu.
func (t *Table) unitData(st *unitState) (*dwarf.Data, error) {
	if st.data != nil || st.dataErr != nil {
		return st.data, st.dataErr
	}
	if st.ci < -1 {
		return t.typeUnitData(st)
	}
	u := t.units[st.ci]
	s := &t.sec
	st.base = u.off
	if u.refs&refsAddr != 0 {
		// References into other units: the view of them all (else the
		// unit alone, whose own references still resolve).
		if d, err := t.wideData(); err == nil {
			st.data, st.base = d, 0
			return d, nil
		}
	}
	info := s.info[u.off:u.end:u.end]
	if mayHaveUTF(u.lang) {
		info = t.utfAsUnsignedChar(u, info)
	}
	if u.refs&refsSig8 != 0 && len(t.tunits) > 0 {
		// Signatures: the unit with the type units it reaches.
		if d, bases, size, err := t.typeView(u, info, nil); err == nil {
			st.data = d
			for i, base := range bases {
				tu := &t.tunits[i]
				st.tuTypes = append(st.tuTypes, dwarf.Offset(base+tu.typeOff-tu.off))
			}
			slices.Sort(st.tuTypes) // (in the order of the view)
			t.cache.grew(st, size/32)
			return d, nil
		}
	}
	d, err := t.newData(s.abbrev, info)
	st.data, st.dataErr = d, err
	// The view shares the image's bytes, but the types decoded through
	// it stay in its type cache (debug/dwarf decodes a type's whole
	// graph): uncharged, the 256 units of a kernel's that
	// BenchmarkLinuxHeavy's sweep of 1200 globals left cached held
	// 150 MB; charged so, 40 MB.
	t.cache.grew(st, len(info)*viewBytesPerInfoByte/32)
	return d, err
}

// newData makes a debug/dwarf view of info with the image's other
// sections.
func (t *Table) newData(abbrev, info []byte) (*dwarf.Data, error) {
	s := &t.sec
	d, err := dwarf.New(abbrev, nil, nil, info, s.line, nil, s.ranges, s.str)
	if err == nil {
		d.AddSection(".debug_addr", s.addr)
		d.AddSection(".debug_line_str", s.lineStr)
		d.AddSection(".debug_str_offsets", s.strOffsets)
		d.AddSection(".debug_rnglists", s.rnglists)
	}
	return d, err
}

// absOff returns the .debug_info offset of an offset in unit ci's view
// (which is made). Caller holds t.mu.
func (t *Table) absOff(ci int32, off dwarf.Offset) uint64 {
	return t.cache.get(ci).base + uint64(off)
}

// unitReader returns a reader of unit ci's view at the unit's own DIE,
// or nil. Caller holds t.mu.
func (t *Table) unitReader(st *unitState) (*dwarf.Data, *dwarf.Reader) {
	d, err := t.unitData(st)
	if err != nil || st.ci < 0 {
		return nil, nil
	}
	r := d.Reader()
	r.Seek(dwarf.Offset(t.units[st.ci].dieOff - st.base))
	return d, r
}

// unitRows returns unit ci's line rows, decoding them on first use.
// Caller holds t.mu.
func (t *Table) unitRows(st *unitState) []row {
	if st.rowsOK {
		return st.rows
	}
	st.rowsOK = true
	u := t.units[st.ci]
	if !u.hasStmtList {
		return nil
	}
	h, err := t.sec.parseLineHeader(u.stmtList, u, plainNamer{})
	if err != nil {
		return nil
	}
	rows := t.sec.decodeRows(h, u.files)
	if !t.codeAtZero() {
		rows = dropSequencesAtZero(rows)
	}
	if t.slide != 0 {
		for i := range rows {
			rows[i].addr += t.slide
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].addr != rows[j].addr {
			return rows[i].addr < rows[j].addr
		}
		// An end row before a start at the same address.
		return rows[i].flags&rowEnd != 0 && rows[j].flags&rowEnd == 0
	})
	st.rows = rows
	t.cache.grew(st, len(rows))
	return rows
}

// rowsOf returns unit ci's rows (locking).
func (t *Table) rowsOf(ci int32) []row {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.unitRows(t.cache.get(ci))
}

// abbrevs parses a unit's abbreviation table into into (may be nil).
// The index parses each once; lazy readers use debug/dwarf.
func (t *Table) abbrevs(into *abbrevTable, u *unit) (*abbrevTable, error) {
	return parseAbbrevs(into, t.sec.abbrev, u.abbrevOff, u.format)
}

// codeAtZero says whether the image has code at address 0 (a section
// that executes there).
func (t *Table) codeAtZero() bool {
	for _, s := range t.img.f.Sections {
		if s.Addr == 0 && s.Size > 0 && s.Flags&elf.SHF_EXECINSTR != 0 && s.Flags&elf.SHF_ALLOC != 0 {
			return true
		}
	}
	return false
}

// dropSequencesAtZero removes the line-table sequences that start at
// address 0 where no code is: those of code the linker dropped
// (--gc-sections), left unrelocated. gdb ignores them too; kept, a line
// of dropped code had a breakpoint at 0.
func dropSequencesAtZero(rows []row) []row {
	out := rows[:0]
	start := 0
	for i := range rows {
		if rows[i].flags&rowEnd == 0 {
			continue
		}
		if rows[start].addr != 0 {
			out = append(out, rows[start:i+1]...)
		}
		start = i + 1
	}
	if start < len(rows) && rows[start].addr != 0 {
		out = append(out, rows[start:]...) // a sequence with no end row
	}
	return out
}
