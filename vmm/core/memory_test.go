package core

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestExtents: guest-physical reads over a dump's segments, as a paging
// dump lays them out (overlapping: memory mapped twice is described
// twice, a short segment inside a long one), with zero tails (an ELF
// segment's p_memsz past p_filesz) and QEMU's unstored tails.
func TestExtents(t *testing.T) {
	file := make([]byte, 0x3000)
	for i := range file {
		file[i] = byte(i>>12) + 1 // the file page, never 0
	}
	// A: [0x0000, 0x8000) stores 0x1000 (file 0x0000); B: [0x2000,
	// 0x2800) stores all (file 0x1000); C: [0x9000, 0xa000) stores 0x800
	// (file 0x2000), its tail zeros.
	run := []extent{
		{pa: 0x9000, memSize: 0x1000, off: 0x2000, fileSize: 0x800},
		{pa: 0, memSize: 0x8000, off: 0, fileSize: 0x1000},
		{pa: 0x2000, memSize: 0x800, off: 0x1000, fileSize: 0x800},
	}
	x := newExtents(bytes.NewReader(file), run)
	read := func(pa uint64, n int) ([]byte, error) {
		p := make([]byte, n)
		got, err := x.ReadAt(p, int64(pa))
		return p[:got], err
	}
	for _, c := range []struct {
		pa   uint64
		n    int
		want []byte
	}{
		{0x0ff0, 0x20, append(bytes.Repeat([]byte{1}, 0x10), make([]byte, 0x10)...)},         // A's stored end, then its zero tail
		{0x1ff0, 0x20, append(make([]byte, 0x10), bytes.Repeat([]byte{2}, 0x10)...)},         // A's zeros up to B, then B
		{0x27f0, 0x20, append(bytes.Repeat([]byte{2}, 0x10), make([]byte, 0x10)...)},         // B's end, back in A's zeros
		{0x9000 + 0x7f0, 0x20, append(bytes.Repeat([]byte{3}, 0x10), make([]byte, 0x10)...)}, // C's stored end, its tail
		{0x7ff0, 0x10, make([]byte, 0x10)},                                                   // A's last bytes
	} {
		got, err := read(c.pa, c.n)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("read %#x+%#x: % x %v, want % x", c.pa, c.n, got, err, c.want)
		}
	}
	// Between A and C nothing: a partial read, then an absentError.
	got, err := read(0x7ff0, 0x20)
	var ae *absentError
	if len(got) != 0x10 || !errors.As(err, &ae) || ae.pa != 0x8000 {
		t.Errorf("read across the gap: %d bytes, %v", len(got), err)
	}
	// QEMU's dump: the tails are not stored, B still is.
	for i := range run {
		run[i].unstoredTail = true
	}
	x = newExtents(bytes.NewReader(file), run)
	if got, err := read(0x2100, 0x10); err != nil || !bytes.Equal(got, bytes.Repeat([]byte{2}, 0x10)) {
		t.Errorf("B in QEMU's dump: % x %v", got, err)
	}
	got, err = read(0x0ff0, 0x20)
	var ue *unstoredError
	if len(got) != 0x10 || !errors.As(err, &ue) || ue.pa != 0x1000 || !strings.Contains(err.Error(), "-p") {
		t.Errorf("A's tail in QEMU's dump: %d bytes, %v", len(got), err)
	}
}

// TestExtentsOverlap reads physical memory described by overlapping runs,
// as a paging dump (QEMU's -p) has them: one run of all RAM and, inside
// it, a run for each virtual mapping, which once made an address past
// a small run's end unreadable (a binary search over ends that are not
// sorted), and a run that ends past RAM's.
func TestExtentsOverlap(t *testing.T) {
	file := make([]byte, 0x10000)
	for i := range file {
		file[i] = byte(i >> 8)
	}
	x := newExtents(bytes.NewReader(file), []extent{
		{pa: 0x3000, memSize: 0x1000, off: 0x3000, fileSize: 0x1000},  // a mapping's page inside RAM
		{pa: 0, memSize: 0x8000, off: 0, fileSize: 0x8000},            // RAM
		{pa: 0x5000, memSize: 0x2000, off: 0x5000, fileSize: 0x1000},  // another, half of it stored
		{pa: 0x9000, memSize: 0x1000, off: 0xa000, fileSize: 0x1000},  // a run with zeros after it
		{pa: 0x9800, memSize: 0x1000, off: 0xa800, fileSize: 0},       // overlapping it, not dumped: zeros after it
		{pa: 0x20000, memSize: 0x1000, off: 0xf000, fileSize: 0x1000}, // after a hole
	})
	for _, c := range []struct {
		pa   uint64
		n    int
		want []byte
	}{
		{0x4ff0, 0x20, append(bytes.Repeat([]byte{0x4f}, 0x10), bytes.Repeat([]byte{0x50}, 0x10)...)}, // past the small run's end
		{0x6ff8, 0x10, append(bytes.Repeat([]byte{0x6f}, 8), bytes.Repeat([]byte{0x70}, 8)...)},       // RAM's, not the half-stored run's zeros
		{0x7ff8, 0x10, nil}, // a hole at 0x8000..0x9000 stops the read
		{0x9ff8, 0x10, append(bytes.Repeat([]byte{0xaf}, 8), make([]byte, 8)...)}, // the stored run, then the other's zeros
		{0x20000, 4, []byte{0xf0, 0xf0, 0xf0, 0xf0}},
	} {
		p := make([]byte, c.n)
		n, err := x.ReadAt(p, int64(c.pa))
		if c.want == nil {
			var ae *absentError
			if !errors.As(err, &ae) || ae.pa != 0x8000 || n != 8 {
				t.Errorf("read at %#x: %d, %v; want absentError at 0x8000", c.pa, n, err)
			}
			continue
		}
		if err != nil || n != c.n || !bytes.Equal(p, c.want) {
			t.Errorf("read at %#x: %d, %v, % x; want % x", c.pa, n, err, p, c.want)
		}
	}
}
