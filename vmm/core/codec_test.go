package core

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// compressedPages compresses pages with the real library (liblzo2's
// LZO1X-1 or libsnappy, through testdata/compress.c) and returns each
// page's compressed bytes.
func compressedPages(t *testing.T, codec string, pages [][]byte) [][]byte {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "compress")
	if out, err := exec.Command("gcc", "-O1", "-o", bin, filepath.Join("testdata", "compress.c"), "-llzo2", "-lsnappy").CombinedOutput(); err != nil {
		t.Skipf("cannot build testdata/compress.c with liblzo2 and libsnappy (install liblzo2-dev libsnappy-dev): %v\n%s", err, out)
	}
	in := filepath.Join(dir, "in")
	if err := os.WriteFile(in, bytes.Join(pages, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	outPath := filepath.Join(dir, "out")
	if out, err := exec.Command(bin, codec, in, outPath).CombinedOutput(); err != nil {
		t.Fatalf("compress %s: %v\n%s", codec, err, out)
	}
	b, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	var res [][]byte
	for len(b) >= 4 {
		n := int(binary.LittleEndian.Uint32(b))
		res = append(res, b[4:4+n])
		b = b[4+n:]
	}
	if len(res) != len(pages) {
		t.Fatalf("%d pages compressed, want %d", len(res), len(pages))
	}
	return res
}

// testPages are pages of the kinds a kernel's memory holds: zeros,
// code, text, repeated structures, and noise.
func testPages(t *testing.T) [][]byte {
	r := rand.New(rand.NewSource(1))
	var pages [][]byte
	add := func(fill func(p []byte)) {
		p := make([]byte, 4096)
		fill(p)
		pages = append(pages, p)
	}
	add(func(p []byte) {})
	add(func(p []byte) { r.Read(p) })
	add(func(p []byte) {
		for i := range p {
			p[i] = "the quick brown fox jumps over the lazy dog\n"[i%44]
		}
	})
	add(func(p []byte) { // structures: pointers and small counters
		for i := 0; i+16 <= len(p); i += 16 {
			binary.LittleEndian.PutUint64(p[i:], 0xffff888000000000+uint64(r.Intn(1<<20))*64)
			binary.LittleEndian.PutUint32(p[i+8:], uint32(r.Intn(4)))
		}
	})
	add(func(p []byte) { // sparse: runs of zeros between short bursts (long length extensions)
		for i := 0; i < len(p); i += 1500 {
			r.Read(p[i : i+7])
		}
	})
	if exe, err := os.ReadFile("/proc/self/exe"); err == nil && len(exe) > 64<<10 {
		for off := 4096; off < 64<<10; off += 4096 * 3 { // code and data of a real binary
			pages = append(pages, exe[off:off+4096])
		}
	}
	return pages
}

// TestDecompressPages decodes pages that the real LZO and snappy
// libraries compressed, as a kdump stores them, and refuses every
// truncation of them with an error, never a panic or a wrong page.
func TestDecompressPages(t *testing.T) {
	pages := testPages(t)
	for codec, decode := range map[string]func(dst, src []byte) error{"lzo": unlzo, "snappy": unsnappy} {
		t.Run(codec, func(t *testing.T) {
			for i, c := range compressedPages(t, codec, pages) {
				got := make([]byte, 4096)
				if err := decode(got, c); err != nil {
					t.Fatalf("page %d (%d bytes compressed): %v", i, len(c), err)
				}
				if !bytes.Equal(got, pages[i]) {
					t.Fatalf("page %d decodes to other bytes", i)
				}
				for cut := 0; cut < len(c); cut += 1 + len(c)/50 {
					if err := decode(make([]byte, 4096), c[:cut]); err == nil {
						t.Fatalf("page %d cut to %d of %d bytes decoded without an error", i, cut, len(c))
					}
				}
			}
		})
	}
}

// FuzzUnlzo: no input makes the LZO decoder panic or write past its page.
func FuzzUnlzo(f *testing.F) {
	f.Add([]byte{0x11, 0, 0})
	f.Add([]byte{0x16, 'a', 'b', 'c', 'd', 'e', 0x11, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) { _ = unlzo(make([]byte, 4096), b) })
}

// FuzzUnsnappy: no input makes the snappy decoder panic.
func FuzzUnsnappy(f *testing.F) {
	f.Add([]byte{0x80, 0x20, 0x00, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) { _ = unsnappy(make([]byte, 4096), b) })
}
