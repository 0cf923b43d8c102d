package session

import "testing"

// TestTaskState: the state letters of fs/proc/array.c's task_state_array,
// from a task's __state and exit_state.
func TestTaskState(t *testing.T) {
	for _, c := range []struct {
		state, exit uint64
		want        string
	}{
		{0, 0, "R"},      // TASK_RUNNING
		{0x1, 0, "S"},    // TASK_INTERRUPTIBLE
		{0x2, 0, "D"},    // TASK_UNINTERRUPTIBLE
		{0x4, 0, "T"},    // __TASK_STOPPED
		{0x8, 0, "t"},    // __TASK_TRACED
		{0x0, 0x10, "X"}, // EXIT_DEAD
		{0x0, 0x20, "Z"}, // EXIT_ZOMBIE
		{0x40, 0, "P"},   // TASK_PARKED
		{0x402, 0, "I"},  // TASK_IDLE
		{0x102, 0, "D"},  // TASK_UNINTERRUPTIBLE | TASK_WAKEKILL (TASK_KILLABLE)
		{0x1, 0x20, "Z"}, // the highest bit wins
		{0x800, 0, "R"},  // bits above TASK_REPORT are not reported
		{0x2402, 0, "I"}, // TASK_IDLE | TASK_FREEZABLE
		{0x8000, 0, "D"}, // TASK_FROZEN (it was R)
		{0x1000, 0, "D"}, // TASK_RTLOCK_WAIT
		{0x2001, 0, "S"}, // TASK_INTERRUPTIBLE | TASK_FREEZABLE
	} {
		if got := taskState(c.state, c.exit); got != c.want {
			t.Errorf("taskState(%#x, %#x) = %s, want %s", c.state, c.exit, got, c.want)
		}
	}
}

// TestLogRecordString: dmesg's format, one timestamp per line of text.
func TestLogRecordString(t *testing.T) {
	r := logRecord{ts: 3_123_456_789, text: "first\nsecond\n"}
	if got, want := r.String(), "[    3.123456] first\n[    3.123456] second\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := (logRecord{text: ""}).String(), "[    0.000000] \n"; got != want {
		t.Errorf("empty record: got %q, want %q", got, want)
	}
}

// TestMember: member paths through nested structs, anonymous unions and
// arrays.
func TestMember(t *testing.T) {
	inner := &ctype{kind: tStruct, name: "struct inner", size: 16, fields: []field{
		{name: "a", off: 0, typ: typLong}, {name: "b", off: 8, typ: typInt}}}
	arr := &ctype{kind: tArray, elem: inner, count: 4, size: 64}
	anon := &ctype{kind: tStruct, union: true, size: 8, fields: []field{{name: "u", off: 0, typ: typULong}}}
	outer := &ctype{kind: tStruct, name: "struct outer", size: 88, fields: []field{
		{name: "x", off: 0, typ: typInt}, {name: "", off: 8, typ: anon}, {name: "in", off: 16, typ: arr}, {name: "last", off: 80, typ: inner}}}
	for _, c := range []struct {
		path string
		off  int64
		typ  *ctype
	}{{"x", 0, typInt}, {"u", 8, typULong}, {"in[2].b", 16 + 32 + 8, typInt}, {"last.a", 80, typLong}, {"in[0]", 16, inner}} {
		off, f, err := member(outer, c.path)
		if err != nil || off != c.off || f.typ != c.typ {
			t.Errorf("member %s: %d %v %v, want %d %v", c.path, off, f.typ, err, c.off, c.typ)
		}
	}
	for _, bad := range []string{"nope", "x.y", "in[x]", "x[1]"} {
		if _, _, err := member(outer, bad); err == nil {
			t.Errorf("member %s: no error", bad)
		}
	}
}

// TestLocations: a breakpoint bound in several places says how many, as
// gdb does; one place says nothing.
func TestLocations(t *testing.T) {
	if got := locations([]uint64{0x1000}); got != "" {
		t.Errorf("one place: %q", got)
	}
	if got := locations([]uint64{0x1000, 0x2000, 0x3000}); got != "3 locations" {
		t.Errorf("three places: %q", got)
	}
}

// TestLogRecordText: a record's text is read from its data block as the
// kernel's get_data and copy_data read it, and the records they reject
// are left out as prb_read_valid leaves them out: data lost
// (FAILED_LPOS), or a block too short for its text; an empty line
// (NO_LPOS) is a record.
func TestLogRecordText(t *testing.T) {
	ring := make([]byte, 64)
	copy(ring[8:], "0123456789abcdef")                        // a block at 0: an 8-byte id, then its text
	copy(ring[48+8:], "wrapped")                              // unused
	r := &printkRing{dataSize: uint64(len(ring)), textOff: 8} // (no kview: the ring's bytes are given)
	for _, c := range []struct {
		begin, next uint64
		n           int
		text        string
		ok          bool
	}{
		{0, 24, 16, "0123456789abcdef", true},
		{64, 64 + 24, 5, "01234", true},       // the ring's second wrap
		{0x3, 0x3, 0, "", true},               // NO_LPOS: an empty line
		{0x1, 0x1, 12, "", false},             // FAILED_LPOS: data lost
		{0, 12, 16, "", false},                // the block holds 4 bytes of text, not 16
		{40, 64 + 24, 10, "0123456789", true}, // wrapped to the ring's start
	} {
		text, ok, err := r.text(ring, c.begin, c.next, c.n)
		if err != nil || text != c.text || ok != c.ok {
			t.Errorf("lpos %#x-%#x, %d bytes: %q %v %v, want %q %v", c.begin, c.next, c.n, text, ok, err, c.text, c.ok)
		}
	}
}
