package symbols

import (
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"vmdap/vmm/vmmtest"
)

// TestRowsMatchObjdump: BeginsRow and NextRow tell the rows of the corpus
// builds' line tables as binutils' objdump decodes them: a row begins at
// every address objdump lists a row of a line at, and nowhere else in
// the functions' code; the row at an address ends at the next address
// objdump lists (a row's or a sequence's end).
func TestRowsMatchObjdump(t *testing.T) {
	objdump, err := exec.LookPath("objdump")
	if err != nil {
		t.Skip("skipping: objdump is not installed (the expected rows come from it)")
	}
	for _, tag := range []string{"O0", "O2", "m32"} {
		t.Run(tag, func(t *testing.T) {
			g := vmmtest.BuildCorpus(t, tag)
			out, err := exec.Command(objdump, "--dwarf=decodedline", g.Path).Output()
			if err != nil {
				t.Fatalf("objdump: %v", err)
			}
			rows := map[uint64]bool{} // address → a row of a line begins there
			var addrs []uint64        // every listed address, ends included
			for _, l := range strings.Split(string(out), "\n") {
				f := strings.Fields(l)
				if len(f) < 3 || !strings.HasPrefix(f[2], "0x") {
					continue
				}
				a, err := strconv.ParseUint(f[2][2:], 16, 64)
				if err != nil {
					continue
				}
				addrs = append(addrs, a)
				if f[1] != "-" && f[1] != "0" {
					rows[a] = true
				}
			}
			slices.Sort(addrs)
			addrs = slices.Compact(addrs)
			tb, err := Load(g.Path, "")
			if err != nil {
				t.Fatal(err)
			}
			checked := 0
			for _, fn := range tb.Funcs() {
				if fn.Inline || !tb.HasLines(fn) {
					continue
				}
				for pc := fn.Low; pc < fn.High; pc++ {
					if got := tb.BeginsRow(pc); got != rows[pc] {
						t.Errorf("%s+%#x (%#x): BeginsRow %v, objdump %v", fn.Name, pc-fn.Low, pc, got, rows[pc])
					}
					if !rows[pc] {
						continue
					}
					checked++
					i, _ := slices.BinarySearch(addrs, pc+1)
					end, ok := tb.NextRow(pc)
					if i < len(addrs) && (!ok || end != addrs[i]) || i == len(addrs) && ok {
						t.Errorf("%s+%#x (%#x): NextRow %#x %v, objdump's next address %v", fn.Name, pc-fn.Low, pc, end, ok, addrs[i:min(i+1, len(addrs))])
					}
				}
			}
			t.Logf("%d rows", checked)
			if checked == 0 {
				t.Fatal("no rows checked")
			}
		})
	}
}
