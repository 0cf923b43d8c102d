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
// at pa, of which the first fileSize are stored at off (the rest read as
// zeros, as an ELF segment's p_memsz beyond p_filesz).
type extent struct {
	pa, memSize   uint64
	off, fileSize uint64
}

// extents is guest-physical memory stored as runs of a file (an ELF
// core's PT_LOAD segments), sorted by address.
type extents struct {
	r   io.ReaderAt
	run []extent
}

// newExtents sorts the runs and clips where they overlap (a paging dump
// describes the memory its page tables map twice: all of it, and each
// mapping), so that each address is in one run.
func newExtents(r io.ReaderAt, run []extent) *extents {
	sort.SliceStable(run, func(i, j int) bool { return run[i].pa < run[j].pa })
	var out []extent
	var end uint64
	for _, e := range run {
		if len(out) > 0 && e.pa < end {
			cut := end - e.pa
			if cut >= e.memSize {
				continue
			}
			e.pa, e.memSize, e.off = end, e.memSize-cut, e.off+cut
			e.fileSize -= min(cut, e.fileSize)
		}
		out = append(out, e)
		end = e.pa + e.memSize
	}
	return &extents{r: r, run: out}
}

// find returns the extent holding pa, or nil.
func (x *extents) find(pa uint64) *extent {
	i := sort.Search(len(x.run), func(i int) bool { return x.run[i].pa+x.run[i].memSize > pa })
	if i == len(x.run) || x.run[i].pa > pa {
		return nil
	}
	return &x.run[i]
}

// ReadAt reads guest-physical memory; it stops at the first byte the
// dump lacks, with an *absentError.
func (x *extents) ReadAt(p []byte, off int64) (int, error) {
	pa := uint64(off)
	n := 0
	for n < len(p) {
		e := x.find(pa)
		if e == nil {
			return n, &absentError{pa}
		}
		in := pa - e.pa
		chunk := min(uint64(len(p)-n), e.memSize-in)
		q := p[n : n+int(chunk)]
		if in < e.fileSize {
			stored := min(chunk, e.fileSize-in)
			if _, err := x.r.ReadAt(q[:stored], int64(e.off+in)); err != nil {
				return n, fmt.Errorf("reading the dump at file offset %#x: %w", e.off+in, err)
			}
			clear(q[stored:])
		} else {
			clear(q)
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
