package boot

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestDSDTAsIASLReadsIt disassembles the DSDT vmdap places with ACPICA's
// iasl (the oracle: the AML is not checked against bytes written out
// here) and checks it declares \_S5 and COM1, with IRQ 4 only when the
// machine has an IOAPIC that the kernel's command line leaves on.
func TestDSDTAsIASLReadsIt(t *testing.T) {
	iasl, err := exec.LookPath("iasl")
	if err != nil {
		t.Skip("skipping: iasl is not installed (apt-get install acpica-tools; .ci/run installs it)")
	}
	le := binary.LittleEndian
	for _, c := range []struct {
		apic    bool
		cmdline string
		irq     bool
	}{
		{true, "console=ttyS0", true},
		{true, "console=ttyS0 nosmp quiet", false},
		{true, "noapic", false},
		{true, "console=ttyS0 -- nosmp", true}, // init's argument
		{false, "console=ttyS0", false},
	} {
		img, _ := Parse(elf64(0x100000, [][4]uint64{{0x100000, 0x100000, 16, 32}}, pvhNote(0x100004)), "")
		ram := make([]byte, 8<<20)
		if _, err := Place(img, ram, Config{VCPUs: 1, APIC: c.apic, Cmdline: c.cmdline}); err != nil {
			t.Fatal(err)
		}
		xsdt := ram[le.Uint64(ram[rsdpAddr+24:]):]
		var dsdt []byte
		for i := 36; i < int(le.Uint32(xsdt[4:])); i += 8 {
			if tab := ram[le.Uint64(xsdt[i:]):]; string(tab[:4]) == "FACP" {
				dsdt = ram[le.Uint64(tab[140:]):]
				dsdt = dsdt[:le.Uint32(dsdt[4:])]
			}
		}
		if dsdt == nil {
			t.Fatal("no FADT in the XSDT")
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "dsdt.aml"), dsdt, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(iasl, "-d", "dsdt.aml")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("iasl -d: %v\n%s", err, out)
		}
		dsl, err := os.ReadFile(filepath.Join(dir, "dsdt.dsl"))
		if err != nil {
			t.Fatal(err)
		}
		// Without comments, on one line.
		dsl = regexp.MustCompile(`\s+`).ReplaceAll(regexp.MustCompile(`(?s)//[^\n]*|/\*.*?\*/`).ReplaceAll(dsl, nil), []byte(" "))
		want := []string{
			`Name \(_S5, Package \(0x04\) \{ 0x05, Zero, Zero, Zero \}\)`,
			`Scope \(\\_SB\) \{ Device \(COM1\)`,
			`Name \(_HID, EisaId \("PNP0501"\) \)`,
			`IO \(Decode16, 0x03F8, 0x03F8, 0x00, 0x08, \)`,
		}
		irq := regexp.MustCompile(`IRQNoFlags \(\) \{4\}`)
		for _, w := range want {
			if !regexp.MustCompile(w).Match(dsl) {
				t.Errorf("%+v: the DSDT lacks %s:\n%s", c, w, dsl)
			}
		}
		if irq.Match(dsl) != c.irq {
			t.Errorf("%+v: IRQ 4 declared: %v:\n%s", c, irq.Match(dsl), dsl)
		}
	}
}
