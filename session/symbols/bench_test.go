package symbols_test

import (
	"debug/dwarf"
	"debug/elf"
	"testing"

	"vmdap/session/symbols"
	"vmdap/vmm/vmmtest"
)

// BenchmarkLoadSmall guards the small case: opening the example guest's
// symbols and answering the first questions a stop asks, beside a
// baseline taken in the same run — debug/elf and debug/dwarf decoding
// the same file eagerly (every entry and line row), which is what vmdap
// did before its index. Report: vmdap/baseline (lower is better; about
// 1, 1.0–1.3 on a busy machine: it was 2–4 while each open cleared a
// 64 KB slab of functions for the guest's twenty).
func BenchmarkLoadSmall(b *testing.B) {
	g := vmmtest.BuildExample(b, "kernel")
	entry := g.Symbols["kmain"]
	var base, ours float64
	b.Run("baseline-eager-stdlib", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			f, err := elf.Open(g.Path)
			if err != nil {
				b.Fatal(err)
			}
			d, err := f.DWARF()
			if err != nil {
				b.Fatal(err)
			}
			r := d.Reader()
			for {
				e, err := r.Next()
				if err != nil || e == nil {
					break
				}
				if e.Tag == dwarf.TagCompileUnit {
					if lr, _ := d.LineReader(e); lr != nil {
						var le dwarf.LineEntry
						for lr.Next(&le) == nil {
						}
					}
				}
			}
			f.Close()
		}
		base = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("vmdap", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			t, err := symbols.Load(g.Path, "")
			if err != nil {
				b.Fatal(err)
			}
			if _, ok := t.PCToLine(entry); !ok {
				b.Fatal("no line for kmain")
			}
			if _, ok := t.ScopeAt(entry); !ok {
				b.Fatal("no scope for kmain")
			}
		}
		ours = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		if base > 0 {
			// (here: a benchmark with sub-benchmarks prints no metrics)
			b.ReportMetric(ours/base, "vmdap/baseline")
		}
	})
}
