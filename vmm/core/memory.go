package core

import (
	"fmt"
	"io"
	"sort"
)

// absentError is guest-physical memory the dump does not hold (never
// dumped, or filtered out by makedumpfile).
type absentError struct{ pa uint64 }

func (e *absentError) Error() string {
	return fmt.Sprintf("physical address %#x is not in the dump", e.pa)
}

// extent is one run of guest-physical memory in a file: memSize bytes
// at pa, of which the first fileSize are stored at off. The rest read as
// zeros, as an ELF segment's p_memsz beyond p_filesz (crash's reading of
// a makedumpfile -E dump), unless unstoredTail: then they are not in the
// dump (QEMU's paging dump, whose PT_LOAD for a mapping that spans
// several RAM blocks stores the first block only).
type extent struct {
	pa, memSize   uint64
	off, fileSize uint64
	unstoredTail  bool
	// truncatedAt, when not 0, is the size of a file cut short inside
	// this run: past fileSize (what the file still holds) the run is not
	// in the dump.
	truncatedAt uint64
}

// extents is guest-physical memory stored as runs of a file (an ELF
// core's PT_LOAD segments), sorted by address. Runs may overlap (a
// paging dump describes memory mapped twice twice); maxEnd[i] is the
// highest end of run[0..i], for finding every run that holds an address.
type extents struct {
	r      io.ReaderAt
	run    []extent
	maxEnd []uint64
}

func newExtents(r io.ReaderAt, run []extent) *extents {
	sort.SliceStable(run, func(i, j int) bool { return run[i].pa < run[j].pa })
	x := &extents{r: r, run: run, maxEnd: make([]uint64, len(run))}
	var end uint64
	for i, e := range run {
		end = max(end, e.pa+e.memSize)
		x.maxEnd[i] = end
	}
	return x
}

// unstoredError is guest-physical memory inside a segment the dump did
// not store (unstoredTail).
type unstoredError struct{ pa, start, stored uint64 }

func (e *unstoredError) Error() string {
	return fmt.Sprintf("physical address %#x is not in the dump: its segment at %#x stores its first %#x bytes only (QEMU's paging dump, -p, stores one RAM block of a mapping that spans several: dump without -p; makedumpfile's ELF, -E, leaves out the pages its dump level filtered: use a lower -d)",
		e.pa, e.start, e.stored)
}

// truncatedError is guest-physical memory a dump stores past the end
// of a file that was cut short.
type truncatedError struct{ pa, size uint64 }

func (e *truncatedError) Error() string {
	return fmt.Sprintf("physical address %#x is not in the dump: the dump file is truncated (it ends at %d bytes, before this page's data)", e.pa, e.size)
}

// find returns the extent that serves pa: one that stores it, else one
// whose zero tail holds it.
func (x *extents) find(pa uint64) (*extent, error) {
	// The runs starting at or before pa, scanned back while one of them
	// may still reach pa.
	i := sort.Search(len(x.run), func(i int) bool { return x.run[i].pa > pa }) - 1
	var tail *extent
	for ; i >= 0 && x.maxEnd[i] > pa; i-- {
		e := &x.run[i]
		if pa >= e.pa+e.memSize {
			continue
		}
		if pa-e.pa < e.fileSize {
			return e, nil
		}
		if tail == nil || (tail.unstoredTail || tail.truncatedAt != 0) && !e.unstoredTail && e.truncatedAt == 0 {
			tail = e
		}
	}
	switch {
	case tail == nil:
		return nil, &absentError{pa}
	case tail.truncatedAt != 0:
		return nil, &truncatedError{pa: pa, size: tail.truncatedAt}
	case tail.unstoredTail:
		return nil, &unstoredError{pa: pa, start: tail.pa, stored: tail.fileSize}
	}
	return tail, nil
}

// ReadAt reads guest-physical memory; it stops at the first byte the
// dump lacks, with an *absentError (or *unstoredError).
func (x *extents) ReadAt(p []byte, off int64) (int, error) {
	pa := uint64(off)
	n := 0
	for n < len(p) {
		e, err := x.find(pa)
		if err != nil {
			return n, err
		}
		in := pa - e.pa
		var chunk uint64
		if in < e.fileSize {
			// Stored bytes; a later overlapping run may store what
			// follows, so read no further than this one stores.
			chunk = min(uint64(len(p)-n), e.fileSize-in)
			if _, err := x.r.ReadAt(p[n:n+int(chunk)], int64(e.off+in)); err != nil {
				return n, fmt.Errorf("reading the dump at file offset %#x: %w", e.off+in, err)
			}
		} else {
			// Zeros, up to where another run starts (it may store some).
			chunk = min(uint64(len(p)-n), e.memSize-in)
			if j := sort.Search(len(x.run), func(i int) bool { return x.run[i].pa > pa }); j < len(x.run) {
				chunk = min(chunk, x.run[j].pa-pa)
			}
			clear(p[n : n+int(chunk)])
		}
		n += int(chunk)
		pa += chunk
	}
	return n, nil
}

// vseg is a virtual range an ELF core maps to guest-physical memory (a
// PT_LOAD with a p_vaddr).
type vseg struct{ va, pa, size uint64 }

// vmap translates by an ELF core's virtual segments: the way in when no
// page tables are known.
type vmap []vseg

func (m vmap) translate(va uint64) (pa, remain uint64, ok bool) {
	for _, s := range m {
		if va >= s.va && va-s.va < s.size {
			return s.pa + (va - s.va), s.size - (va - s.va), true
		}
	}
	return 0, 0, false
}
