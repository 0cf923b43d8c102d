package rsp

import (
	"bytes"
	"strings"
	"testing"
)

func TestFrameAndDecode(t *testing.T) {
	for _, tc := range []struct{ data, wire string }{
		{"OK", "$OK#9a"},
		{"g", "$g#67"},
		{"", "$#00"},
		{"a#b$c}d*e", "$a}\x03b}\x04c}]d}\x0ae#" + "00"}, // checksum filled below
	} {
		f := string(Frame([]byte(tc.data)))
		if !strings.HasPrefix(tc.wire, f[:len(f)-2]) && tc.wire[len(tc.wire)-2:] != "00" {
			t.Fatalf("Frame(%q) = %q, want %q", tc.data, f, tc.wire)
		}
		raw := f[1 : len(f)-3]
		got, err := Decode([]byte(raw), []byte(f[len(f)-2:]))
		if err != nil || string(got) != tc.data {
			t.Fatalf("Decode(Frame(%q)) = %q, %v", tc.data, got, err)
		}
	}
	if _, err := Decode([]byte("OK"), []byte("00")); err == nil {
		t.Fatal("bad checksum accepted")
	}
}

func TestRunLengthDecoding(t *testing.T) {
	// From the GDB manual: "0* " means '0' repeated 3 more times (' ' is 32, 32-29 = 3).
	got, err := Expand([]byte("0* "))
	if err != nil || string(got) != "0000" {
		t.Fatalf("Expand = %q, %v", got, err)
	}
	got, _ = Expand([]byte("ab*\"c")) // '"' is 34: 5 more b
	if string(got) != "abbbbbbc" {
		t.Fatalf("Expand = %q", got)
	}
	if _, err := Expand([]byte("*x")); err == nil {
		t.Fatal("run length without a byte accepted")
	}
}

func TestParseStopReply(t *testing.T) {
	r, err := ParseStopReply("T05thread:p01.01;watch:0000000000100100;")
	if err != nil || r.Kind != 'T' || r.Signal != 5 || r.Thread != "p01.01" || r.Watch != "watch" || r.WatchAt != 0x100100 {
		t.Fatalf("%+v %v", r, err)
	}
	if n, _ := ThreadNum(r.Thread); n != 1 {
		t.Fatalf("thread %d", n)
	}
	r, _ = ParseStopReply("T05thread:02;swbreak:;")
	if !r.SWBreak || r.Thread != "02" {
		t.Fatalf("%+v", r)
	}
	r, _ = ParseStopReply("W21")
	if r.Kind != 'W' || r.Signal != 0x21 {
		t.Fatalf("%+v", r)
	}
	if _, err := ParseStopReply("OK"); err == nil {
		t.Fatal("OK parsed as a stop reply")
	}
}

func TestParseFeaturesAndThreads(t *testing.T) {
	f := ParseFeatures("PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+;QStartNoAckMode-")
	if f.PacketSize() != 4096 || !f.Has("qXfer:features:read") || f.Has("QStartNoAckMode") {
		t.Fatalf("%v", f)
	}
	ids, more, err := ParseThreadList("mp01.01,p01.02")
	if err != nil || !more || len(ids) != 2 {
		t.Fatalf("%v %v %v", ids, more, err)
	}
	if _, more, _ := ParseThreadList("l"); more {
		t.Fatal("l continues")
	}
}

func TestTargetDescIgnoresComments(t *testing.T) {
	docs := map[string]string{
		"target.xml": `<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd">
<target><architecture>i386:x86-64</architecture><xi:include href="core.xml"/></target>`,
		"core.xml": `<?xml version="1.0"?><feature name="org.gnu.gdb.i386.core">
  <reg name="rax" bitsize="64" type="int64"/>
  <!-- <reg name="cs_base" bitsize="64" type="int64"/> -->
  <reg name="rip" bitsize="64" type="code_ptr"/>
  <reg name="eflags" bitsize="32" type="i386_eflags"/>
</feature>`,
	}
	d, err := ParseTargetDesc([]byte(docs["target.xml"]), func(n string) ([]byte, error) { return []byte(docs[n]), nil })
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range d.Regs {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "rax,rip,eflags" || d.Regs[2].Offset != 16 || d.Size() != 20 || d.Arch != "i386:x86-64" {
		t.Fatalf("regs %v (%+v)", names, d)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("OK"), []byte("9a"))
	f.Add([]byte("a}\x03*\""), []byte("00"))
	f.Fuzz(func(t *testing.T, raw, cs []byte) {
		out, err := Decode(raw, cs)
		if err == nil && bytes.Contains(raw, []byte("}")) && len(out) > len(raw)*100 {
			t.Fatal("expansion out of bounds")
		}
	})
}

func FuzzExpandRoundTrip(f *testing.F) {
	f.Add([]byte("hello $world# }*"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := Frame(data)
		got, err := Decode(fr[1:len(fr)-3], fr[len(fr)-2:])
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip of %q: %q %v", data, got, err)
		}
	})
}
