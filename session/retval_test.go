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
	}{
		{i32, 64, 0xffffffff_fffffffd, 0, "-3"},
		{i64, 32, 0xdead_00000002, 0x1, "4294967298"}, // EDX:EAX
		{small, 64, 2<<32 | 1, 0, "{a: 1, b: 2}"},
		{pair, 64, 5, 6, "{a: 5, b: 6}"},
		{big, 64, 0xe00, 0, "{a: 7, b: 8, c: 9}"},   // in memory at RAX
		{small, 32, 0xe00, 0, "{a: 7, b: 0}"},       // i386: aggregates in memory at EAX
		{packed, 64, 0xe00, 0, "{a: 7, b: 0}"},      // an unaligned field: class MEMORY, at RAX
		{f64, 64, 0, 0, "floating-point register"},  // XMM0
		{mixed, 64, 0, 0, "floating-point members"}, // RAX and XMM0
		{i32, 16, 0, 0, "16-bit code"},
	}
	for _, c := range cases {
		r := &returned{typ: c.typ, mode: x86.Mode(c.mode), rax: c.rax, rdx: c.rdx}
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
