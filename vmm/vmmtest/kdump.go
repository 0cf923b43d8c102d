package vmmtest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Kdump cores made from QEMU's: makedumpfile (Debian's, 1.7.2) filters a
// core to what crash and drgn need and writes an ELF kdump (-E) or the
// compressed kdump format (-c), as a crashed machine's kdump service does.

// RequireMakedumpfile returns makedumpfile's path, or skips the test.
func RequireMakedumpfile(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("makedumpfile")
	if err != nil {
		t.Skip("skipping: no makedumpfile (apt-get install makedumpfile, as .ci/run does)")
	}
	return p
}

// Makedumpfile converts QEMU's ELF core in to out with makedumpfile's
// format flag (-E: ELF, -c: compressed kdump) at dump level 31 (no zero,
// cache, user or free pages). The kernel's VMCOREINFO comes from vmlinux
// (-x), as the brief asks of a dump without its note. QEMU 7.2 writes its
// program headers after section headers, where makedumpfile 1.7.2 does
// not look ("Can't get the number of PT_LOAD": it reads them right after
// the ELF header), so in is first rewritten in place with its program
// headers there (the same core to every other reader).
func Makedumpfile(t testing.TB, in, vmlinux, out, format string) {
	t.Helper()
	bin := RequireMakedumpfile(t)
	if err := PhdrsAfterEhdr(in); err != nil {
		t.Fatalf("core %s for makedumpfile: %v", in, err)
	}
	cmd := exec.Command(bin, format, "-d", "31", "-x", vmlinux, in, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("makedumpfile %s -d 31 -x %s %s %s: %v\n%s", format, vmlinux, in, out, err, b)
	}
}

// PhdrsAfterEhdr rewrites an ELF64 core in place so that its program
// headers follow its ELF header, dropping its section headers (QEMU's
// hold only an extended program header count, unused below 65,535
// segments). Every segment keeps its file offset: the program headers
// move into the space of the section headers and their own.
func PhdrsAfterEhdr(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var h elf.Header64
	if err := binary.Read(f, binary.LittleEndian, &h); err != nil {
		return fmt.Errorf("reading the ELF header: %w", err)
	}
	const ehdrSize = 64
	switch {
	case h.Phoff == ehdrSize:
		return nil
	case h.Phnum == 0xffff:
		return fmt.Errorf("%d+ program headers (an extended count)", h.Phnum)
	case h.Phoff < ehdrSize || h.Phentsize != 56:
		return fmt.Errorf("program headers at %#x of %d bytes each: not an ELF64 core's", h.Phoff, h.Phentsize)
	}
	ph := make([]byte, int(h.Phnum)*int(h.Phentsize))
	if _, err := f.ReadAt(ph, int64(h.Phoff)); err != nil {
		return fmt.Errorf("reading the program headers: %w", err)
	}
	h.Phoff, h.Shoff, h.Shnum, h.Shstrndx = ehdrSize, 0, 0, 0
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, &h)
	b.Write(ph)
	_, err = f.WriteAt(b.Bytes(), 0)
	return err
}

// DropQEMUNotes rewrites an ELF core's notes in place without QEMU's own
// (QEMUCPUState: every register, CR3 too), as a kdump's vmcore has them:
// NT_PRSTATUS and VMCOREINFO only. A reader must then find the kernel's
// page tables from VMCOREINFO (init_top_pgt and phys_base). It returns
// how many notes it dropped.
func DropQEMUNotes(path string) (int, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	ef, err := elf.NewFile(f)
	if err != nil {
		return 0, err
	}
	var h elf.Header64
	if err := binary.Read(io.NewSectionReader(f, 0, 64), binary.LittleEndian, &h); err != nil {
		return 0, err
	}
	dropped := 0
	for i, p := range ef.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := f.ReadAt(b, int64(p.Off)); err != nil {
			return 0, err
		}
		var kept []byte
		for len(b) >= 12 {
			namesz, descsz := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
			size := 12 + int(align4(namesz)+align4(descsz))
			if size > len(b) {
				return 0, fmt.Errorf("a note of %d bytes in %d", size, len(b))
			}
			if name := string(bytes.TrimRight(b[12:12+namesz], "\x00")); strings.EqualFold(name, "QEMU") {
				dropped++
			} else {
				kept = append(kept, b[:size]...)
			}
			b = b[size:]
		}
		if _, err := f.WriteAt(kept, int64(p.Off)); err != nil {
			return 0, err
		}
		// The segment's new size: the program header's p_filesz and
		// p_memsz (at 32 and 40 in Elf64_Phdr).
		var sz [16]byte
		binary.LittleEndian.PutUint64(sz[:], uint64(len(kept)))
		binary.LittleEndian.PutUint64(sz[8:], uint64(len(kept)))
		if _, err := f.WriteAt(sz[:], int64(h.Phoff)+int64(i)*int64(h.Phentsize)+32); err != nil {
			return 0, err
		}
	}
	return dropped, nil
}

func align4(n uint32) uint32 { return (n + 3) &^ 3 }
