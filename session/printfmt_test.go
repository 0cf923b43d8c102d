package session

import "testing"

// TestPrintFormatLetters: gdb's print format letters other than x, as gdb
// 13 prints them (p/t 10 is 1010, p/o 8 is 010, p/c 65 is 65 'A', p/d
// 'A' is 65, p/u (char)-1 is 255, p/d (unsigned char)200 is -56), which the console refused
// ("unexpected "/"").
func TestPrintFormatLetters(t *testing.T) {
	sc := newSymScope()
	for _, c := range []struct{ in, want string }{
		{"/t 10", "1010"}, {"/o 8", "010"}, {"/o 0", "0"}, {"/c 65", "65 'A'"}, {"/d 'A'", "65"},
		{"/u (char)-1", "255"}, {"/d -1", "-1"}, {"/u -1", "4294967295"}, {"/d (unsigned char)200", "-56"},
		{"/d (char)200", "-56"}, {"/z 5", "0x00000005"}, {"/a 0x104", "0x104 <kmain+4>"}, {"/t 0", "0"},
		{"/d 2.7", "4613262278296967578"}, {"/c 321", "65 'A'"}, {"/x origin.x", ""},
	} {
		letter, rest := printLetter(c.in)
		if c.want == "" {
			if letter != 0 {
				t.Errorf("printLetter(%q) took /%c", c.in, letter)
			}
			continue
		}
		if letter == 0 {
			t.Errorf("printLetter(%q): no letter", c.in)
			continue
		}
		v, err := evalExpr(rest, sc)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		got, err := formatLetter(v, sc, letter)
		if err != nil || got != c.want {
			t.Errorf("p%s = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	v, err := evalExpr("origin", sc)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := formatLetter(v, sc, 't'); err == nil {
		t.Errorf("p/t origin = %q, want an error naming the formats that apply", got)
	}
}
