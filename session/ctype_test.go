package session

import (
	"debug/dwarf"
	"strings"
	"testing"
)

// DWARF types built as debug/dwarf hands them over (a two-dimensional
// array is an ArrayType of an ArrayType, outer dimension first).
var (
	dInt  = &dwarf.IntType{BasicType: dwarf.BasicType{CommonType: dwarf.CommonType{ByteSize: 4, Name: "int"}}}
	dChar = &dwarf.CharType{BasicType: dwarf.BasicType{CommonType: dwarf.CommonType{ByteSize: 1, Name: "char"}}}
	dU8   = &dwarf.TypedefType{CommonType: dwarf.CommonType{Name: "u8"},
		Type: &dwarf.UcharType{BasicType: dwarf.BasicType{CommonType: dwarf.CommonType{ByteSize: 1, Name: "unsigned char"}}}}
)

func dConst(t dwarf.Type) dwarf.Type    { return &dwarf.QualType{Qual: "const", Type: t} }
func dVolatile(t dwarf.Type) dwarf.Type { return &dwarf.QualType{Qual: "volatile", Type: t} }
func dPtr(t dwarf.Type) dwarf.Type {
	return &dwarf.PtrType{CommonType: dwarf.CommonType{ByteSize: 8}, Type: t}
}
func dArray(t dwarf.Type, n int64) dwarf.Type { return &dwarf.ArrayType{Type: t, Count: n} }
func dFunc(ret dwarf.Type, params ...dwarf.Type) dwarf.Type {
	return &dwarf.FuncType{ReturnType: ret, ParamType: params}
}

// TestTypeSpelling: types are spelled as gdb 13's whatis spells the
// same declarations (int grid[2][3]; const char *const greeting;
// handler_t handlers[3] …): dimensions in declaration order (they were
// reversed: int [3] [2]), a pointer's own qualifiers after its star (a
// const pointer was just "const"), typedef names kept inside derived
// types (handlers was int (int) * [3]), pointers to functions and
// arrays in C's declarator form.
func TestTypeSpelling(t *testing.T) {
	handler := &dwarf.TypedefType{CommonType: dwarf.CommonType{Name: "handler_t"}, Type: dPtr(dFunc(dInt, dInt))}
	for _, c := range []struct {
		dt   dwarf.Type
		want string
	}{
		{dArray(dArray(dInt, 3), 2), "int [2][3]"},
		{dArray(dArray(dArray(dU8, 2), 2), 2), "u8 [2][2][2]"},
		{dConst(dPtr(dConst(dChar))), "const char * const"},
		{dConst(dPtr(dVolatile(dInt))), "volatile int * const"},
		{dConst(dPtr(dFunc(dInt, dInt))), "int (* const)(int)"},
		{dPtr(dConst(dVolatile(dPtr(dConst(dInt))))), "const int * const volatile *"},
		{dPtr(dVolatile(dConst(dPtr(dConst(dInt))))), "const int * const volatile *"},
		{dPtr(dConst(dPtr(dVolatile(dPtr(dInt))))), "int * volatile * const *"},
		{&dwarf.QualType{Qual: "restrict", Type: dPtr(dInt)}, "int * restrict"},
		{dVolatile(dConst(dInt)), "const volatile int"},
		{dArray(handler, 3), "handler_t [3]"},
		{dPtr(dArray(handler, 3)), "handler_t (*)[3]"},
		{dConst(handler), "const handler_t"},
		{dPtr(dConst(dPtr(dFunc(dInt, dInt)))), "int (* const *)(int)"},
		{dArray(dPtr(dFunc(dInt, dInt)), 3), "int (*[3])(int)"},
		{dArray(dConst(dPtr(dFunc(dInt))), 2), "int (* const[2])(void)"},
		{dArray(dPtr(dInt), 2), "int *[2]"},
		{dPtr(dArray(dChar, 4)), "char (*)[4]"},
		{dPtr(dFunc(dPtr(dArray(dInt, 3)), dInt)), "int (*(*)(int))[3]"},
		{dPtr(dFunc(nil)), "void (*)(void)"},
		{dArray(dU8, -1), "u8 []"},
	} {
		if got := fromDWARF(c.dt, newTypeCache(nil)).String(); got != c.want {
			t.Errorf("type %q, want %q", got, c.want)
		}
	}
}

// TestIntegerTypeNames: GCC's integer type names are shown as gdb 13
// shows them (whatis of a short int is short), the others as the DWARF
// names them.
func TestIntegerTypeNames(t *testing.T) {
	for dwarfName, want := range map[string]string{
		"short int": "short", "short unsigned int": "unsigned short", "long int": "long",
		"long unsigned int": "unsigned long", "long long int": "long long",
		"long long unsigned int": "unsigned long long", "int": "int", "unsigned int": "unsigned int",
		"__int128": "__int128", "__int128 unsigned": "__int128 unsigned",
	} {
		common := dwarf.CommonType{ByteSize: 8, Name: dwarfName}
		var dt dwarf.Type = &dwarf.IntType{BasicType: dwarf.BasicType{CommonType: common}}
		if strings.Contains(dwarfName, "unsigned") {
			dt = &dwarf.UintType{BasicType: dwarf.BasicType{CommonType: common}}
		}
		if got := fromDWARF(dt, newTypeCache(nil)).String(); got != want {
			t.Errorf("%s: type %q, want %q", dwarfName, got, want)
		}
	}
}
