package session

import (
	"debug/dwarf"
	"encoding/binary"
	"strings"
	"testing"

	"vmdap/x86"
)

// TestReturnedByConvention: where the System V AMD64 and i386 calling
// conventions put a returned value, by its type.
func TestReturnedByConvention(t *testing.T) {
	i32 := &dwarf.IntType{BasicType: dwarf.BasicType{CommonType: dwarf.CommonType{ByteSize: 4, Name: "int"}}}
	i64 := &dwarf.IntType{BasicType: dwarf.BasicType{CommonType: dwarf.CommonType{ByteSize: 8, Name: "long long"}}}
	f64 := &dwarf.FloatType{BasicType: dwarf.BasicType{CommonType: dwarf.CommonType{ByteSize: 8, Name: "double"}}}
	st := func(name string, size int64, fs ...dwarf.Type) *dwarf.StructType {
		s := &dwarf.StructType{CommonType: dwarf.CommonType{ByteSize: size}, StructName: name, Kind: "struct"}
		off := int64(0)
		for i, f := range fs {
			s.Field = append(s.Field, &dwarf.StructField{Name: string(rune('a' + i)), Type: f, ByteOffset: off})
			off += f.Size()
		}
		return s
	}
	pair := st("pair", 16, i64, i64)
	small := st("small", 8, i32, i32)
	big := st("big", 24, i64, i64, i64)
	mixed := st("mixed", 16, i64, f64)
	f32 := &dwarf.FloatType{BasicType: dwarf.BasicType{CommonType: dwarf.CommonType{ByteSize: 4, Name: "float"}}}
	f80 := &dwarf.FloatType{BasicType: dwarf.BasicType{CommonType: dwarf.CommonType{ByteSize: 16, Name: "long double"}}}
	f3 := st("f3", 12, f32, f32, f32) // SSE, SSE: XMM0 (a, b) and XMM1 (c)
	dl := st("dl", 16, f64, i64)      // SSE, INTEGER: XMM0 and RAX
	withLD := st("withld", 16, f80)   // X87: MEMORY
	u32 := &dwarf.UintType{BasicType: dwarf.BasicType{CommonType: dwarf.CommonType{ByteSize: 4, Name: "unsigned int"}}}
	// struct { double d; unsigned b : 4; }: d SSE in the first eightbyte
	// (XMM0), the bitfield (DWARF 5: by its bit offset, 64) INTEGER in
	// the second (RAX).
	bitsD := &dwarf.StructType{CommonType: dwarf.CommonType{ByteSize: 16}, StructName: "bitsd", Kind: "struct", Field: []*dwarf.StructField{
		{Name: "d", Type: f64, ByteOffset: 0}, {Name: "b", Type: u32, BitSize: 4, DataBitOffset: 64}}}
	fp := &x86.FPRegs{} // XMM0 1.5, st(0) -1.5
	binary.LittleEndian.PutUint64(fp.XMM[0][:], 0x3ff8000000000000)
	copy(fp.ST[0][:], []byte{0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xbf})
	fp2 := &x86.FPRegs{} // XMM0 0.5 and 2.5 (floats), XMM1 -3.5
	binary.LittleEndian.PutUint64(fp2.XMM[0][:], 0x40200000_3f000000)
	binary.LittleEndian.PutUint32(fp2.XMM[1][:], 0xc0600000)
	u8 := &dwarf.UintType{BasicType: dwarf.BasicType{CommonType: dwarf.CommonType{ByteSize: 1, Name: "unsigned char"}}}
	packed := st("packed", 5, u8, i32) // __attribute__((packed)): b at offset 1
	sc := newMemScope()
	for i, v := range []uint64{7, 8, 9} {
		binary.LittleEndian.PutUint64(sc.mem[0xe00+8*i:], v)
	}
	cases := []struct {
		typ      dwarf.Type
		mode     int
		rax, rdx uint64
		want     string // the rendering, or the error's text
		fp       *x86.FPRegs
	}{
		{i32, 64, 0xffffffff_fffffffd, 0, "-3", nil},
		{i64, 32, 0xdead_00000002, 0x1, "4294967298", nil}, // EDX:EAX
		{small, 64, 2<<32 | 1, 0, "{a: 1, b: 2}", nil},
		{pair, 64, 5, 6, "{a: 5, b: 6}", nil},
		{big, 64, 0xe00, 0, "{a: 7, b: 8, c: 9}", nil}, // in memory at RAX
		{small, 32, 0xe00, 0, "{a: 7, b: 0}", nil},     // i386: aggregates in memory at EAX
		{packed, 64, 0xe00, 0, "{a: 7, b: 0}", nil},    // an unaligned field: class MEMORY, at RAX
		{f64, 64, 0, 0, "XMM or x87 registers, which this target does not read", nil},
		{f64, 64, 0, 0, "1.5", fp},                                      // XMM0
		{f32, 64, 0, 0, "0", fp},                                        // XMM0's low 4 bytes (1.5's are 0)
		{mixed, 64, 4, 0, "{a: 4, b: 1.5}", fp},                         // RAX, then XMM0
		{dl, 64, 4, 0, "{a: 1.5, b: 4}", fp},                            // XMM0, then RAX
		{f3, 64, 0, 0, "{a: 0.5, b: 2.5, c: -3.5}", fp2},                // XMM0, XMM1
		{withLD, 64, 0xe00, 0, "{a: 3.26609878056669724387e-4948}", fp}, // MEMORY, at RAX
		{bitsD, 64, 5, 0, "{d: 1.5, b: 5}", fp},                         // SSE (XMM0), then INTEGER (RAX)
		{f80, 64, 0, 0, "-1.5", fp},                                     // st(0)
		{f64, 32, 0, 0, "-1.5", fp},                                     // i386: st(0), rounded to a double
		{f32, 32, 0, 0, "-1.5", fp},                                     // and to a float
		{i32, 16, 0, 0, "16-bit code", nil},
	}
	for _, c := range cases {
		r := &returned{typ: c.typ, mode: x86.Mode(c.mode), rax: c.rax, rdx: c.rdx, fp: c.fp}
		cache := newTypeCache(nil)
		v, err := r.value(cache)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = format(v, sc, false)
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("%s in %d-bit code (rax %#x, rdx %#x): %q, want %q", c.typ, c.mode, c.rax, c.rdx, got, c.want)
		}
	}
}
