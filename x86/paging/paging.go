// Package paging translates guest-virtual to guest-physical addresses by
// walking a CPU's page tables through a physical-memory io.ReaderAt. It
// implements every paging mode of SDM Vol. 3A chapter 4: none (CR0.PG=0),
// 32-bit (§4.3, 4 KiB and 4 MiB pages), PAE (§4.4, 4 KiB and 2 MiB pages),
// 4-level (§4.5, 4 KiB, 2 MiB and 1 GiB pages) and 5-level (CR4.LA57).
//
// Walks are read-only: accessed and dirty bits are not set, and permission
// bits are not checked (a debugger reads what the kernel could map).
package paging

import (
	"encoding/binary"
	"fmt"
	"io"

	"vmdap/x86"
)

// State is the part of a CPU state that selects and roots the walk.
type State struct {
	CR0, CR3, CR4, EFER uint64
}

// FromSRegs extracts the paging state of a CPU.
func FromSRegs(s x86.SRegs) State { return State{CR0: s.CR0, CR3: s.CR3, CR4: s.CR4, EFER: s.EFER} }

// Mode names a paging mode.
func (s State) Mode() string {
	switch {
	case s.CR0&x86.CR0PG == 0:
		return "none"
	case s.CR4&x86.CR4PAE == 0:
		return "32-bit"
	case s.EFER&x86.EFERLMA == 0:
		return "PAE"
	case s.CR4&x86.CR4LA57 != 0:
		return "5-level"
	}
	return "4-level"
}

// NotMappedError says a virtual address has no translation.
type NotMappedError struct {
	VA    uint64
	Level string // the table whose entry was not present
}

func (e *NotMappedError) Error() string {
	return fmt.Sprintf("virtual address %#x is not mapped (%s entry not present)", e.VA, e.Level)
}

const addrMask = 0x000ffffffffff000 // bits 51:12 of a 64-bit entry

// Translate returns the physical address of va and the number of bytes
// from va to the end of its page (so a caller can copy up to the page
// boundary with one translation).
func Translate(mem io.ReaderAt, st State, va uint64) (pa uint64, remain uint64, err error) {
	switch st.Mode() {
	case "none":
		return va, 1<<12 - va&0xfff, nil
	case "32-bit":
		return walk32(mem, st, va)
	case "PAE":
		return walkPAE(mem, st, va)
	}
	return walkLong(mem, st, va)
}

func read32(mem io.ReaderAt, pa uint64) (uint64, error) {
	var b [4]byte
	if _, err := mem.ReadAt(b[:], int64(pa)); err != nil {
		return 0, fmt.Errorf("reading page table at %#x: %w", pa, err)
	}
	return uint64(binary.LittleEndian.Uint32(b[:])), nil
}

func read64(mem io.ReaderAt, pa uint64) (uint64, error) {
	var b [8]byte
	if _, err := mem.ReadAt(b[:], int64(pa)); err != nil {
		return 0, fmt.Errorf("reading page table at %#x: %w", pa, err)
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

func page(base, va, size uint64) (uint64, uint64) {
	off := va & (size - 1)
	return base + off, size - off
}

func walk32(mem io.ReaderAt, st State, va uint64) (uint64, uint64, error) {
	va &= 0xffffffff
	pde, err := read32(mem, st.CR3&0xfffff000+(va>>22)*4)
	if err != nil {
		return 0, 0, err
	}
	if pde&1 == 0 {
		return 0, 0, &NotMappedError{va, "PDE"}
	}
	if pde&0x80 != 0 && st.CR4&x86.CR4PSE != 0 {
		// 4 MiB page: bits 31:22, plus PSE-36 bits 20:13 → 39:32.
		base := pde&0xffc00000 | (pde>>13&0xff)<<32
		pa, rem := page(base, va, 4<<20)
		return pa, rem, nil
	}
	pte, err := read32(mem, pde&0xfffff000+(va>>12&0x3ff)*4)
	if err != nil {
		return 0, 0, err
	}
	if pte&1 == 0 {
		return 0, 0, &NotMappedError{va, "PTE"}
	}
	pa, rem := page(pte&0xfffff000, va, 4096)
	return pa, rem, nil
}

func walkPAE(mem io.ReaderAt, st State, va uint64) (uint64, uint64, error) {
	va &= 0xffffffff
	pdpte, err := read64(mem, st.CR3&0xffffffe0+(va>>30)*8)
	if err != nil {
		return 0, 0, err
	}
	if pdpte&1 == 0 {
		return 0, 0, &NotMappedError{va, "PDPTE"}
	}
	return walkFrom(mem, va, pdpte&addrMask, []level{{"PDE", 21, true}, {"PTE", 12, false}})
}

type level struct {
	name  string
	shift uint
	large bool // PS may end the walk here
}

func walkLong(mem io.ReaderAt, st State, va uint64) (uint64, uint64, error) {
	levels := []level{{"PML4E", 39, false}, {"PDPTE", 30, true}, {"PDE", 21, true}, {"PTE", 12, false}}
	if st.CR4&x86.CR4LA57 != 0 {
		levels = append([]level{{"PML5E", 48, false}}, levels...)
	}
	return walkFrom(mem, va, st.CR3&addrMask, levels)
}

func walkFrom(mem io.ReaderAt, va, table uint64, levels []level) (uint64, uint64, error) {
	for i, l := range levels {
		e, err := read64(mem, table+(va>>l.shift&0x1ff)*8)
		if err != nil {
			return 0, 0, err
		}
		if e&1 == 0 {
			return 0, 0, &NotMappedError{va, l.name}
		}
		last := i == len(levels)-1
		if last || (l.large && e&0x80 != 0) {
			size := uint64(1) << l.shift
			base := e & addrMask &^ (size - 1)
			pa, rem := page(base, va, size)
			return pa, rem, nil
		}
		table = e & addrMask
	}
	panic("unreachable")
}

// Tables lists the guest-physical addresses of the paging-structure pages
// reachable from st's CR3 (SDM Vol. 3A §4.2): the root table and every
// table a present non-leaf entry points to, but not the pages the leaf
// entries map. These are the pages the CPU reads (and sets accessed and
// dirty bits in) on its own while it translates. At most limit pages are
// listed; complete is false when the walk stopped there. Tables that cannot
// be read are listed but not walked. With paging off there are none.
func Tables(mem io.ReaderAt, st State, limit int) (pages []uint64, complete bool) {
	w := tableWalk{mem: mem, seen: map[uint64]bool{}, walked: map[[2]uint64]bool{}, limit: limit}
	switch st.Mode() {
	case "none":
		return nil, true
	case "32-bit":
		// A page directory; PS (with CR4.PSE) makes an entry a 4 MiB leaf.
		w.walk(st.CR3&0xfffff000, []tableLevel{{4, st.CR4&x86.CR4PSE != 0}, {4, false}}, 1024)
	case "PAE":
		// The 32-byte PDPT sits inside a page; its four entries have no PS.
		w.walk(st.CR3&0xffffffe0, []tableLevel{{8, false}, {8, true}, {8, false}}, 4)
	default:
		levels := []tableLevel{{8, false}, {8, true}, {8, true}, {8, false}}
		if st.CR4&x86.CR4LA57 != 0 {
			levels = append([]tableLevel{{8, false}}, levels...)
		}
		w.walk(st.CR3&addrMask, levels, 512)
	}
	return w.pages, !w.cut
}

// tableLevel is one level of a walk for Tables: its entry width and
// whether PS may make an entry a leaf there.
type tableLevel struct {
	width int
	large bool
}

type tableWalk struct {
	mem    io.ReaderAt
	seen   map[uint64]bool    // pages listed
	walked map[[2]uint64]bool // (table, levels left) walked: shared or self-referencing tables are walked once per level
	pages  []uint64
	limit  int
	cut    bool
}

// walk visits the table at pa (n entries) and, below it, the tables its
// entries point to; the last level's entries are leaves.
func (w *tableWalk) walk(pa uint64, levels []tableLevel, n int) {
	pg := pa &^ 0xfff
	if !w.seen[pg] {
		if len(w.pages) >= w.limit {
			w.cut = true
			return
		}
		w.seen[pg] = true
		w.pages = append(w.pages, pg)
	}
	key := [2]uint64{pa, uint64(len(levels))}
	if len(levels) == 1 || w.walked[key] {
		return
	}
	w.walked[key] = true
	l := levels[0]
	buf := make([]byte, n*l.width)
	if _, err := w.mem.ReadAt(buf, int64(pa)); err != nil {
		return
	}
	for i := 0; i < n && !w.cut; i++ {
		var e, next uint64
		if l.width == 4 {
			e = uint64(binary.LittleEndian.Uint32(buf[i*4:]))
			next = e & 0xfffff000
		} else {
			e = binary.LittleEndian.Uint64(buf[i*8:])
			next = e & addrMask
		}
		if e&1 == 0 || (l.large && e&0x80 != 0) {
			continue
		}
		w.walk(next, levels[1:], 4096/levels[1].width)
	}
}
