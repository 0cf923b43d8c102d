package core

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strings"
	"sync"
)

// The compressed kdump format (makedumpfile's diskdump_mod.h, which
// QEMU's dump-guest-memory -z writes too): block 0 is disk_dump_header,
// then sub_hdr_size blocks of kdump_sub_header, then bitmap_blocks
// blocks of two bitmaps of page frames (those that exist, those that are
// dumped), then one page_desc per dumped frame in frame order, then the
// pages, each compressed on its own. A block is a page.
const (
	diskdumpMagic = "KDUMP   "

	ddHeaderVersion = 8   // int header_version
	ddUtsname       = 12  // struct new_utsname: 6 fields of 65 bytes
	ddBlockSize     = 428 // int block_size (after a timeval aligned to 8)
	ddSubHdrSize    = 432 // int sub_hdr_size, in blocks
	ddBitmapBlocks  = 436 // unsigned bitmap_blocks
	ddMaxMapnr      = 440 // unsigned max_mapnr (32-bit; version 6 has a 64-bit one)
	ddNrCPUs        = 460 // int nr_cpus
	ddHeaderEnd     = 464

	// kdump_sub_header fields (unsigned long / off_t: 8 bytes each).
	subVMCoreInfoOff  = 32
	subVMCoreInfoSize = 40
	subNoteOff        = 48
	subNoteSize       = 56
	subMaxMapnr64     = 96
	subEnd            = 104

	pageDescSize = 24 // off_t offset; unsigned size, flags; u64 page_flags

	// page_desc flags: how a page is compressed.
	ddZlib   = 0x1
	ddLZO    = 0x2
	ddSnappy = 0x4
	ddZstd   = 0x20

	// maxBitmap bounds the dumped-page bitmap vmdap keeps (a bit a page:
	// 64 MiB is 2 TiB of 4 KiB pages).
	maxBitmap = 64 << 20
	// cachePages is how many decompressed pages are kept.
	cachePages = 512
)

// diskdump is a compressed kdump's guest-physical memory.
type diskdump struct {
	r         io.ReaderAt
	blockSize uint64
	maxMapnr  uint64
	dumped    []byte   // the second bitmap: which frames have a page_desc
	rank      []uint64 // dumped frames before each 4096-bit run of the bitmap
	descs     int64    // file offset of the first page_desc

	// truncated, when not 0, is the size of a file cut short before the
	// end of its pages (need bytes).
	truncated, need uint64

	mu    sync.Mutex // guards cache and order
	cache map[uint64][]byte
	order []uint64 // frames in cache, oldest first
}

// openDiskdump reads a compressed kdump's headers, bitmap and notes.
func openDiskdump(r io.ReaderAt) (*dump, error) {
	h := make([]byte, ddHeaderEnd)
	if _, err := r.ReadAt(h, 0); err != nil {
		return nil, fmt.Errorf("compressed kdump: reading its header: %w", err)
	}
	le := binary.LittleEndian
	version := int32(le.Uint32(h[ddHeaderVersion:]))
	bs := int64(int32(le.Uint32(h[ddBlockSize:])))
	subBlocks := int64(int32(le.Uint32(h[ddSubHdrSize:])))
	bitmapBlocks := int64(le.Uint32(h[ddBitmapBlocks:]))
	maxMapnr := uint64(le.Uint32(h[ddMaxMapnr:]))
	if bs < 512 || bs > 1<<20 || bs&(bs-1) != 0 {
		return nil, fmt.Errorf("compressed kdump: block size %d is not a page size", bs)
	}
	if subBlocks < 1 || subBlocks > 1<<10 {
		return nil, fmt.Errorf("compressed kdump: a sub-header of %d blocks", subBlocks)
	}
	sub := make([]byte, subEnd)
	if _, err := r.ReadAt(sub, bs); err != nil {
		return nil, fmt.Errorf("compressed kdump: reading its sub-header: %w", err)
	}
	if version >= 6 {
		maxMapnr = le.Uint64(sub[subMaxMapnr64:])
	}
	if bitmapBlocks < 2 || bitmapBlocks%2 != 0 {
		return nil, fmt.Errorf("compressed kdump: a bitmap of %d blocks (two bitmaps of equal size)", bitmapBlocks)
	}
	half := bitmapBlocks / 2 * bs
	if half > maxBitmap || uint64(half)*8 < maxMapnr {
		return nil, fmt.Errorf("compressed kdump: bitmaps of %d bytes for %d page frames", half, maxMapnr)
	}
	bitmapOff := (1 + subBlocks) * bs
	dd := &diskdump{r: r, blockSize: uint64(bs), maxMapnr: maxMapnr, cache: map[uint64][]byte{},
		descs: bitmapOff + bitmapBlocks*bs}
	dd.dumped = make([]byte, half)
	if _, err := r.ReadAt(dd.dumped, bitmapOff+half); err != nil {
		return nil, fmt.Errorf("compressed kdump: reading its bitmap: %w", err)
	}
	dd.index()
	if size, ok := fileSize(r); ok {
		dd.truncatedAt(size)
	}

	d := &dump{format: "compressed kdump", phys: dd}
	var n notes
	if version >= 4 {
		off, size := int64(le.Uint64(sub[subNoteOff:])), le.Uint64(sub[subNoteSize:])
		if size > maxNotes {
			return nil, fmt.Errorf("compressed kdump: %d bytes of notes", size)
		}
		b := make([]byte, size)
		if _, err := r.ReadAt(b, off); err != nil {
			return nil, fmt.Errorf("compressed kdump: reading its notes: %w", err)
		}
		if err := parseNotes(b, &n); err != nil {
			return nil, fmt.Errorf("compressed kdump: %w", err)
		}
	}
	if version >= 3 && n.info == nil {
		off, size := int64(le.Uint64(sub[subVMCoreInfoOff:])), le.Uint64(sub[subVMCoreInfoSize:])
		if size > 0 && size <= maxInfo {
			b := make([]byte, size)
			if _, err := r.ReadAt(b, off); err != nil {
				return nil, fmt.Errorf("compressed kdump: reading its VMCOREINFO: %w", err)
			}
			n.info = parseInfo(b)
		}
	}
	if err := d.setCPUs(n); err != nil {
		return nil, fmt.Errorf("compressed kdump: %w", err)
	}
	if len(n.qemu) > 0 {
		d.format = "compressed kdump (QEMU dump-guest-memory)"
	}
	if uts := cstr(h[ddUtsname+2*65 : ddUtsname+3*65]); uts != "" && d.info == nil {
		d.info = map[string]string{"OSRELEASE": uts}
	}
	if dd.truncated != 0 {
		d.format += fmt.Sprintf(", truncated: the file has %d of the %d bytes its pages need; the pages past its end are not in the dump", dd.truncated, dd.need)
	}
	return d, nil
}

func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}

// truncatedAt notes a file of size bytes that ends before its last
// page: its page descriptors, and the last ones' pages, must be in it
// (makedumpfile and QEMU write the pages in the descriptors' order).
func (dd *diskdump) truncatedAt(size uint64) {
	var total uint64
	if n := len(dd.rank); n > 0 {
		total = dd.rank[n-1] + popcount(dd.dumped[(n-1)*512:])
	}
	need := uint64(dd.descs) + total*pageDescSize
	if total > 0 && need <= size {
		// The last descriptors' pages (the last few: zero pages share
		// one stored page, at the start).
		k := min(total, 1024)
		b := make([]byte, k*pageDescSize)
		if _, err := dd.r.ReadAt(b, dd.descs+int64(total-k)*pageDescSize); err == nil {
			for i := 0; i < len(b); i += pageDescSize {
				need = max(need, binary.LittleEndian.Uint64(b[i:])+uint64(binary.LittleEndian.Uint32(b[i+8:])))
			}
		}
	}
	if need > size {
		dd.truncated, dd.need = size, need
	}
}

// index counts the dumped frames before each 4096-bit run of the
// bitmap, so a frame's page_desc is found without counting from 0.
func (dd *diskdump) index() {
	const run = 512 // bytes: 4096 frames
	dd.rank = make([]uint64, 0, len(dd.dumped)/run+1)
	var c uint64
	for i := 0; i < len(dd.dumped); i += run {
		dd.rank = append(dd.rank, c)
		c += popcount(dd.dumped[i:min(i+run, len(dd.dumped))])
	}
}

func popcount(b []byte) uint64 {
	var c int
	for len(b) >= 8 {
		c += bits.OnesCount64(binary.LittleEndian.Uint64(b))
		b = b[8:]
	}
	for _, x := range b {
		c += bits.OnesCount8(x)
	}
	return uint64(c)
}

// descIndex returns the index of a frame's page_desc, or false when the
// frame was not dumped.
func (dd *diskdump) descIndex(pfn uint64) (uint64, bool) {
	if pfn >= dd.maxMapnr || dd.dumped[pfn/8]&(1<<(pfn%8)) == 0 {
		return 0, false
	}
	start := pfn / 4096 * 512
	return dd.rank[pfn/4096] + popcount(dd.dumped[start:pfn/8]) + uint64(bits.OnesCount8(dd.dumped[pfn/8]&(1<<(pfn%8)-1))), true
}

// page returns a dumped frame's contents, from the cache or the file.
func (dd *diskdump) page(pfn uint64) ([]byte, error) {
	dd.mu.Lock()
	p, ok := dd.cache[pfn]
	dd.mu.Unlock()
	if ok {
		return p, nil
	}
	i, ok := dd.descIndex(pfn)
	if !ok {
		return nil, &absentError{pfn * dd.blockSize}
	}
	var desc [pageDescSize]byte
	if _, err := dd.r.ReadAt(desc[:], dd.descs+int64(i)*pageDescSize); err != nil {
		if dd.truncated != 0 {
			return nil, &truncatedError{pa: pfn * dd.blockSize, size: dd.truncated}
		}
		return nil, fmt.Errorf("reading the descriptor of page frame %#x: %w", pfn, err)
	}
	off := int64(binary.LittleEndian.Uint64(desc[:]))
	size := uint64(binary.LittleEndian.Uint32(desc[8:]))
	flags := binary.LittleEndian.Uint32(desc[12:])
	if size == 0 || size > dd.blockSize*2 || off < 0 {
		return nil, fmt.Errorf("page frame %#x: a stored page of %d bytes at %#x", pfn, size, off)
	}
	stored := make([]byte, size)
	if _, err := dd.r.ReadAt(stored, off); err != nil {
		if dd.truncated != 0 {
			return nil, &truncatedError{pa: pfn * dd.blockSize, size: dd.truncated}
		}
		return nil, fmt.Errorf("reading page frame %#x: %w", pfn, err)
	}
	p, err := dd.decompress(stored, flags)
	if err != nil {
		return nil, fmt.Errorf("page frame %#x: %w", pfn, err)
	}
	dd.mu.Lock()
	if len(dd.order) >= cachePages {
		delete(dd.cache, dd.order[0])
		dd.order = dd.order[1:]
	}
	dd.cache[pfn] = p
	dd.order = append(dd.order, pfn)
	dd.mu.Unlock()
	return p, nil
}

// decompress returns a whole page from what the file stores.
func (dd *diskdump) decompress(b []byte, flags uint32) ([]byte, error) {
	p := make([]byte, dd.blockSize)
	switch {
	case flags&ddZlib != 0:
		z, err := zlib.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("zlib: %w", err)
		}
		if _, err := io.ReadFull(z, p); err != nil {
			return nil, fmt.Errorf("zlib: %w", err)
		}
	case flags&ddSnappy != 0:
		if err := unsnappy(p, b); err != nil {
			return nil, fmt.Errorf("snappy: %w", err)
		}
	case flags&ddLZO != 0:
		if err := unlzo(p, b); err != nil {
			return nil, fmt.Errorf("lzo: %w", err)
		}
	case flags&ddZstd != 0:
		return nil, errors.New("compressed with zstd, which vmdap does not read: make the dump with zlib (makedumpfile -c), LZO (-l) or snappy (-p), or as ELF (-E)")
	default:
		if uint64(len(b)) != dd.blockSize {
			return nil, fmt.Errorf("an uncompressed page of %d bytes", len(b))
		}
		copy(p, b)
	}
	return p, nil
}

// ReadAt reads guest-physical memory a page at a time.
func (dd *diskdump) ReadAt(p []byte, off int64) (int, error) {
	pa := uint64(off)
	n := 0
	for n < len(p) {
		pg, err := dd.page(pa / dd.blockSize)
		if err != nil {
			return n, err
		}
		m := copy(p[n:], pg[pa%dd.blockSize:])
		n += m
		pa += uint64(m)
	}
	return n, nil
}
