package symbols

import (
	"bufio"
	"encoding/binary"
	hexenc "encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// exprFrame is the fixed frame of testdata/locexpr.txt.
type exprFrame struct{}

func (exprFrame) Reg(n int) (uint64, bool) {
	if n == 16 {
		return 0, false
	}
	return 0x1000 * uint64(n+1), true
}

func (exprFrame) CFA() (uint64, bool) { return 0x9000, true }

func (exprFrame) ReadMemory(p []byte, addr uint64) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], addr+0x100)
	copy(p, b[:])
	return nil
}

func (exprFrame) EntryValue(expr []byte) (uint64, error) {
	if len(expr) == 1 && expr[0] >= 0x50 && expr[0] < 0x70 {
		return 0xe000 + uint64(expr[0]-0x50), nil
	}
	return 0, errors.New("not a register")
}

// placeText writes a Place the way testdata/locexpr.txt does.
func placeText(p Place) string {
	one := func(p Place) string {
		switch {
		case p.PtrTo != 0:
			return fmt.Sprintf("pointer <%#x> %+d", p.PtrTo, p.PtrOff)
		case p.Implicit != nil:
			return "implicit " + hexenc.EncodeToString(p.Implicit)
		case p.IsVal:
			return fmt.Sprintf("value %#x", p.Value)
		case p.InReg:
			return fmt.Sprintf("reg %d", p.Reg)
		}
		return fmt.Sprintf("addr %#x", p.Addr)
	}
	if !p.Pieces {
		return one(p)
	}
	var parts []string
	for _, pc := range p.Parts {
		if pc.Empty {
			parts = append(parts, fmt.Sprintf("[empty %d]", pc.Bits))
			continue
		}
		parts = append(parts, fmt.Sprintf("[%s %d]", one(pc.Place), pc.Bits))
	}
	return "pieces " + strings.Join(parts, " ")
}

// TestEvaluateGolden runs testdata/locexpr.txt: each expression's
// evaluation in a fixed frame, 64- and 32-bit (4-byte DW_OP_addr and
// DW_OP_deref, arithmetic at 32 bits), and the named-operation text of
// its bytes.
func TestEvaluateGolden(t *testing.T) {
	f, err := os.Open("testdata/locexpr.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		col := strings.Split(line, "|")
		if len(col) != 5 {
			t.Fatalf("line %d: %d columns", ln, len(col))
		}
		for i := range col {
			col[i] = strings.TrimSpace(col[i])
		}
		text, want := col[0], col[4]
		expr, err := hexenc.DecodeString(strings.ReplaceAll(col[1], " ", ""))
		if err != nil {
			t.Fatalf("line %d: %v", ln, err)
		}
		as, _ := strconv.Atoi(col[2])
		var fb []byte
		if col[3] != "-" {
			if fb, err = hexenc.DecodeString(strings.ReplaceAll(col[3], " ", "")); err != nil {
				t.Fatalf("line %d: %v", ln, err)
			}
		}
		n++
		got := ""
		p, err := Evaluate(expr, fb, as, exprFrame{})
		if err != nil {
			got = "error " + err.Error()
		} else {
			got = placeText(p)
		}
		if w, isErr := strings.CutPrefix(want, "error "); isErr {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("line %d: %s: got %s, want an error containing %q", ln, text, got, w)
			}
		} else if got != want {
			t.Errorf("line %d: %s: got %s, want %s", ln, text, got, want)
		}
		if as == 8 && len(expr) > 0 {
			if got, err := EvalLocation(expr, fb, exprFrame{}); err == nil && placeText(got) != want {
				t.Errorf("line %d: EvalLocation (64-bit) %s, want %s", ln, placeText(got), want)
			}
		}
		// The text column is how readelf writes the bytes.
		if !strings.Contains(text, "<") && !strings.Contains(want, "DW_OP_") {
			if ft := fmtExpr(expr, as, 0); strings.TrimSpace(ft) != text {
				t.Errorf("line %d: bytes read as %q, the file says %q", ln, ft, text)
			}
		}
	}
	if n < 50 {
		t.Fatalf("only %d expressions", n)
	}
}

// TestEvaluateNeverPanics feeds every prefix and every one-byte change of
// each golden expression (truncated operands, wild skips, stack
// underflow) to Evaluate: an error or a place, never a panic or a hang.
func TestEvaluateNeverPanics(t *testing.T) {
	b, err := os.ReadFile("testdata/locexpr.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		col := strings.Split(line, "|")
		if len(col) != 5 {
			continue
		}
		expr, _ := hexenc.DecodeString(strings.ReplaceAll(strings.TrimSpace(col[1]), " ", ""))
		for i := 0; i <= len(expr); i++ {
			Evaluate(expr[:i], expr, 4, exprFrame{})
			Evaluate(expr[:i], nil, 8, exprFrame{})
		}
		for i := range expr {
			for _, v := range []byte{0, 0x7f, 0x80, 0xff, expr[i] ^ 1} {
				m := append([]byte(nil), expr...)
				m[i] = v
				Evaluate(m, m, 8, exprFrame{})
			}
		}
	}
}
