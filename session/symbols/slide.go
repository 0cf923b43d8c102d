package symbols

// A relocated image (a Linux kernel under KASLR runs where its link
// addresses plus a slide say): SetSlide moves everything the table
// answers with by that much. Functions, symbols, unit ranges and line
// rows are moved in place (rows as they are decoded); queries that reach
// the debug information itself (scopes, location lists, inlined calls,
// call sites, CFI) translate the PC back to a link address.

// Slide returns the relocation applied to the image (0: none).
func (t *Table) Slide() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.slide
}

// SetSlide relocates the table by slide bytes from its link addresses.
func (t *Table) SetSlide(slide uint64) {
	t.names() // built before the functions move (names do not change)
	t.moving.Lock()
	defer t.moving.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	d := slide - t.slide
	if d == 0 {
		return
	}
	for _, f := range t.funcs {
		f.Low += d
		f.High += d
	}
	for i := range t.ranges {
		t.ranges[i].low += d
		t.ranges[i].high += d
	}
	for i := range t.cuRanges {
		t.cuRanges[i].low += d
		t.cuRanges[i].high += d
	}
	for i := range t.syms {
		t.syms[i].value += d
	}
	t.slide = slide
	t.cache.init() // rows and call sites are decoded again, moved
}

// link turns a run-time address into the image's link address.
func (t *Table) link(pc uint64) uint64 { return pc - t.slide }

// slideAddrOp moves a location expression that is one DW_OP_addr (a
// global's or a static's address) by the slide.
func (t *Table) slideAddrOp(loc []byte, addrSize int) []byte {
	if t.slide == 0 || len(loc) != 1+addrSize || loc[0] != 0x03 {
		return loc
	}
	r := rd{b: loc[1:]}
	a := r.uN(addrSize) + t.slide
	out := make([]byte, len(loc))
	out[0] = 0x03
	for i := 0; i < addrSize; i++ {
		out[1+i] = byte(a >> (8 * i))
	}
	return out
}

// ImageBytes reads n bytes of the image's contents at link address addr
// (from its loadable segments), as the file holds them.
func (t *Table) ImageBytes(addr uint64, n int) ([]byte, bool) {
	for _, im := range []*image{t.dimg, t.img} {
		for _, p := range im.f.Progs {
			if p.Type != 1 || addr < p.Vaddr || addr+uint64(n) > p.Vaddr+p.Filesz { // PT_LOAD
				continue
			}
			b := make([]byte, n)
			if _, err := p.ReadAt(b, int64(addr-p.Vaddr)); err != nil {
				continue
			}
			return b, true
		}
	}
	return nil, false
}

// LinkSymbol returns a symbol's link address (before any slide).
func (t *Table) LinkSymbol(name string) (uint64, bool) {
	a, ok := t.SymbolAddr(name)
	return a - t.Slide(), ok
}
