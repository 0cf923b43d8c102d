package core

import (
	"bytes"
	"errors"
	"testing"
)

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
