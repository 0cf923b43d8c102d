package core

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"
)

// The flattened format is makedumpfile's (and QEMU's dump-guest-memory
// -z/-l/-s by default) way of writing a compressed kdump to a pipe: a
// 4 KiB header that says "makedumpfile", then records of a big-endian
// (offset, size) and size bytes that belong at offset of the kdump, in
// whatever order they were produced, ended by an offset of -1.
// `makedumpfile -R` reassembles the kdump; vmdap indexes the records and
// reads through them instead.
const (
	flatMagic     = "makedumpfile"
	flatHeaderLen = 4096
	// maxFlatRecords bounds the index (a record is usually 4 to 16 KiB
	// of the dump: 16 Mi of them are 64 GiB or more).
	maxFlatRecords = 16 << 20
)

// flatRecord is one record: size bytes of the kdump at off, stored at
// pos in the file.
type flatRecord struct{ off, size, pos int64 }

// flat reads the kdump a flattened file holds.
type flat struct {
	r   io.ReaderAt
	rec []flatRecord // sorted by off
	// truncated, when not 0, is the size of a file cut short before its
	// end record: the records it still holds whole are read.
	truncated int64
}

// openFlat indexes a flattened file's records.
func openFlat(r io.ReaderAt) (*flat, error) {
	f := &flat{r: r}
	pos := int64(flatHeaderLen)
	fsize, sized := fileSize(r)
	var h [16]byte
	for {
		if _, err := r.ReadAt(h[:], pos); err != nil {
			if sized && (err == io.EOF || err == io.ErrUnexpectedEOF) && len(f.rec) > 0 {
				f.truncated = int64(fsize) // cut short between records
				break
			}
			if sized && (err == io.EOF || err == io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("flattened kdump: the file is truncated: it ends at %d bytes, before its first record", fsize)
			}
			return nil, fmt.Errorf("flattened kdump: reading the record header at %#x: %w", pos, err)
		}
		off, size := int64(binary.BigEndian.Uint64(h[:])), int64(binary.BigEndian.Uint64(h[8:]))
		if off == -1 {
			break
		}
		if off < 0 || size < 0 || size > 1<<30 {
			return nil, fmt.Errorf("flattened kdump: a record of %d bytes at %d (file offset %#x)", size, off, pos)
		}
		if len(f.rec) >= maxFlatRecords {
			return nil, fmt.Errorf("flattened kdump: more than %d records", maxFlatRecords)
		}
		if sized && uint64(pos+16+size) > fsize {
			f.truncated = int64(fsize) // cut short inside this record
			break
		}
		f.rec = append(f.rec, flatRecord{off: off, size: size, pos: pos + 16})
		pos += 16 + size
	}
	// A later record of the same bytes replaces an earlier one (the
	// writer went back to fill in a header): keep the order of writing
	// among equal offsets, the last one found first.
	sort.SliceStable(f.rec, func(i, j int) bool { return f.rec[i].off < f.rec[j].off })
	return f, nil
}

// ReadAt reads the kdump's bytes at off.
func (f *flat) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		at := off + int64(n)
		// The last record that starts at or before at.
		i := sort.Search(len(f.rec), func(i int) bool { return f.rec[i].off > at }) - 1
		for i >= 0 && f.rec[i].off+f.rec[i].size <= at {
			// Records rarely overlap; look back a little for one that
			// covers at.
			if i == 0 || at-f.rec[i-1].off > 1<<30 {
				i = -1
				break
			}
			i--
		}
		if i < 0 {
			if f.truncated != 0 {
				return n, fmt.Errorf("flattened kdump: no record holds offset %#x: the file is truncated (it ends at %d bytes, before its end record)", at, f.truncated)
			}
			return n, fmt.Errorf("flattened kdump: no record holds offset %#x: %w", at, io.ErrUnexpectedEOF)
		}
		r := f.rec[i]
		m := min(int64(len(p)-n), r.off+r.size-at)
		if _, err := f.r.ReadAt(p[n:n+int(m)], r.pos+(at-r.off)); err != nil {
			return n, fmt.Errorf("flattened kdump: %w", err)
		}
		n += int(m)
	}
	return n, nil
}
