package core

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"vmdap/x86"
)

// notes is what a dump's ELF notes say about the machine.
type notes struct {
	prstatus []cpuRegs // each CPU's NT_PRSTATUS, in note order
	// longMode: the ELF header says EM_X86_64, which QEMU writes when
	// its first CPU is in long mode (EM_386 otherwise).
	longMode bool
	qemu     [][]byte          // each CPU's QEMUCPUState, in note order
	info     map[string]string // VMCOREINFO
}

// cpuRegs is one CPU's registers, as a note gives them.
type cpuRegs struct {
	regs  x86.Regs
	sregs x86.SRegs
}

const (
	ntPRStatus = 1
	maxCPUs    = 4096
	// maxInfo bounds the VMCOREINFO text a dump may carry.
	maxInfo = 1 << 20
)

// parseNotes reads a PT_NOTE segment's notes.
func parseNotes(b []byte, n *notes) error {
	for len(b) > 0 {
		if len(b) < 12 {
			return fmt.Errorf("truncated ELF note header (%d bytes left)", len(b))
		}
		namesz := uint64(binary.LittleEndian.Uint32(b))
		descsz := uint64(binary.LittleEndian.Uint32(b[4:]))
		typ := binary.LittleEndian.Uint32(b[8:])
		b = b[12:]
		nameEnd, descEnd := align4(namesz), align4(namesz)+descsz
		if nameEnd > uint64(len(b)) || descEnd > uint64(len(b)) {
			if namesz == 0 && descsz == 0 {
				break
			}
			return fmt.Errorf("ELF note of name size %d and data size %d runs past its segment", namesz, descsz)
		}
		name := string(bytes.TrimRight(b[:namesz], "\x00"))
		desc := b[nameEnd:descEnd]
		switch {
		case name == "CORE" && typ == ntPRStatus:
			r, sr, _, err := x86.ParsePRStatus(desc)
			if err != nil {
				return err
			}
			n.prstatus = append(n.prstatus, cpuRegs{r, sr})
		case name == "QEMU" && typ == 0:
			n.qemu = append(n.qemu, desc)
		case name == "VMCOREINFO" && typ == 0 && len(desc) <= maxInfo:
			n.info = parseInfo(desc)
		}
		if len(n.prstatus) > maxCPUs || len(n.qemu) > maxCPUs {
			return fmt.Errorf("more than %d CPUs' notes", maxCPUs)
		}
		b = b[min(align4(descEnd), uint64(len(b))):]
	}
	return nil
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// parseInfo reads VMCOREINFO's KEY=VALUE lines.
func parseInfo(b []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			m[k] = strings.TrimRight(v, "\x00")
		}
	}
	return m
}

// infoNumber reads a VMCOREINFO value: SYMBOL(...) and KERNELOFFSET are
// hexadecimal without a prefix, NUMBER(...) decimal.
func infoNumber(info map[string]string, key string, base int) (uint64, bool) {
	s, ok := info[key]
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(strings.TrimSpace(s), base, 64)
	if err != nil {
		if i, err := strconv.ParseInt(strings.TrimSpace(s), base, 64); err == nil {
			return uint64(i), true
		}
		return 0, false
	}
	return v, true
}
