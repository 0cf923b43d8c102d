package vmmtest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
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
// format flag (-E: ELF, -c: compressed kdump) at a dump level (-d: 1 no
// zero pages; 31 no zero, cache, user or free pages either). The
// kernel's layout comes from vmlinux's DWARF (-x): makedumpfile 1.7.2
// cannot take a 6.12 kernel's from its VMCOREINFO alone ("The kernel
// version is not supported"). QEMU 7.2 writes its program headers after
// section headers, where makedumpfile 1.7.2 does not look ("Can't get the
// number of PT_LOAD": it reads them right after the ELF header), so in is
// first rewritten in place with its program headers there (the same core
// to every other reader).
func Makedumpfile(t testing.TB, in, vmlinux, out, format string, level int) {
	t.Helper()
	bin := RequireMakedumpfile(t)
	if err := PhdrsAfterEhdr(in); err != nil {
		t.Fatalf("core %s for makedumpfile: %v", in, err)
	}
	cmd := exec.Command(bin, format, "-d", fmt.Sprint(level), "-x", vmlinux, in, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("makedumpfile %s -d %d -x %s %s %s: %v\n%s", format, level, vmlinux, in, out, err, b)
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
	for i := 0; i < len(ph); i += 56 {
		if off, size := binary.LittleEndian.Uint64(ph[i+8:]), binary.LittleEndian.Uint64(ph[i+32:]); size > 0 && off < ehdrSize+uint64(len(ph)) {
			return fmt.Errorf("a segment at file offset %#x, where the program headers would go", off)
		}
	}
	h.Phoff, h.Shoff, h.Shnum, h.Shstrndx = ehdrSize, 0, 0, 0
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, &h)
	b.Write(ph)
	_, err = f.WriteAt(b.Bytes(), 0)
	return err
}

// KdumpNotes rewrites an ELF core of QEMU's notes in place as a kdump's
// vmcore has them: without QEMU's own notes (QEMUCPUState: every
// register, CR3 too), NT_PRSTATUS and VMCOREINFO only, and with each
// NT_PRSTATUS's gs_base the one the kernel's crash path writes there
// (ELF_CORE_COPY_REGS: x86_gsbase_read_cpu_inactive(), in the kernel
// after swapgs: the user's GS base, not the CPU's per-CPU area, which
// QEMU writes). A reader must then find the kernel's page tables from
// VMCOREINFO (init_top_pgt and phys_base), and each CPU's per-CPU area
// by the notes' order (the kernel's CPU order). It returns how many
// QEMU notes it dropped.
func KdumpNotes(path string) (int, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	segs, err := noteSegments(f)
	if err != nil {
		return 0, err
	}
	// QEMUCPUState (QEMU's target/i386/arch_dump.c): version and size
	// (u32), 16 registers, rip, rflags, 10 segments of 24 bytes (cs, ds,
	// es, fs, gs: the base at 16 in each), cr[5], kernel_gs_base.
	const qemuGSBase, qemuKernelGSBase = 8 + 18*8 + 4*24 + 16, 8 + 18*8 + 10*24 + 5*8
	// struct elf_prstatus: pr_reg at 112; cs and gs_base its 18th and
	// 23rd registers.
	const prCS, prGSBase = 112 + 17*8, 112 + 22*8
	var userGS []uint64
	var prstatus []fileNote
	dropped := 0
	for _, seg := range segs {
		var kept []byte
		for _, n := range seg.notes {
			switch {
			case n.name == "QEMU":
				dropped++
				if n.descSize < qemuKernelGSBase+8 {
					return 0, fmt.Errorf("a QEMU note of %d bytes: no kernel_gs_base", n.descSize)
				}
				b := n.raw[len(n.raw)-int(align4(n.descSize)):]
				userGS = append(userGS, binary.LittleEndian.Uint64(b[qemuKernelGSBase:]), binary.LittleEndian.Uint64(b[qemuGSBase:]))
				continue
			case n.name == "CORE" && n.typ == 1 && n.descSize >= prGSBase+8:
				prstatus = append(prstatus, n)
			}
			kept = append(kept, n.raw...)
		}
		if _, err := f.WriteAt(kept, seg.off); err != nil {
			return 0, err
		}
		// The segment's new size: its program header's p_filesz and
		// p_memsz (at 32 and 40 in Elf64_Phdr).
		var sz [16]byte
		binary.LittleEndian.PutUint64(sz[:], uint64(len(kept)))
		binary.LittleEndian.PutUint64(sz[8:], uint64(len(kept)))
		if _, err := f.WriteAt(sz[:], seg.phdr+32); err != nil {
			return 0, err
		}
	}
	if len(userGS) != 2*len(prstatus) {
		return 0, fmt.Errorf("%d QEMU notes and %d NT_PRSTATUS", len(userGS)/2, len(prstatus))
	}
	// The notes moved up as the QEMU notes went: find each NT_PRSTATUS
	// again in the rewritten segments.
	segs, err = noteSegments(f)
	if err != nil {
		return 0, err
	}
	i := 0
	for _, seg := range segs {
		for _, n := range seg.notes {
			if n.name != "CORE" || n.typ != 1 || n.descSize < prGSBase+8 {
				continue
			}
			b := n.raw[len(n.raw)-int(align4(n.descSize)):]
			gs := userGS[2*i] // in the kernel: the user's is the inactive one
			if binary.LittleEndian.Uint64(b[prCS:])&3 != 0 {
				gs = userGS[2*i+1] // in user mode: the active one
			}
			var v [8]byte
			binary.LittleEndian.PutUint64(v[:], gs)
			if _, err := f.WriteAt(v[:], n.desc+prGSBase); err != nil {
				return 0, err
			}
			i++
		}
	}
	return dropped, nil
}

// ClearPRStatusPIDs sets the pr_pid of an ELF core's NT_PRSTATUS notes
// to 0 (at 32 in struct elf_prstatus), in place. QEMU writes each vCPU's
// number + 1 there, where the kernel's own crash dumps write the pid of
// the task running on the CPU: drgn and crash would take pids 1 and 2 for
// running tasks and unwind them from the vCPUs' registers (pid 0 is the
// idle tasks').
func ClearPRStatusPIDs(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	segs, err := noteSegments(f)
	if err != nil {
		return err
	}
	for _, seg := range segs {
		for _, n := range seg.notes {
			if n.name == "CORE" && n.typ == 1 && n.descSize >= 36 {
				if _, err := f.WriteAt(make([]byte, 4), n.desc+32); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// noteSegment is an ELF core's PT_NOTE segment: where its program header
// and its data are in the file, and its notes.
type noteSegment struct {
	phdr, off int64
	notes     []fileNote
}

// fileNote is an ELF note: its bytes, its owner's name and type, and
// where its descriptor is in the file.
type fileNote struct {
	raw      []byte
	name     string
	typ      uint32
	desc     int64
	descSize uint32
}

// noteSegments reads an ELF64 core's notes.
func noteSegments(f *os.File) ([]noteSegment, error) {
	var h elf.Header64
	if err := binary.Read(io.NewSectionReader(f, 0, 64), binary.LittleEndian, &h); err != nil {
		return nil, fmt.Errorf("reading the ELF header: %w", err)
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return nil, err
	}
	var segs []noteSegment
	for i, p := range ef.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		seg := noteSegment{phdr: int64(h.Phoff) + int64(i)*int64(h.Phentsize), off: int64(p.Off)}
		b := make([]byte, p.Filesz)
		if _, err := f.ReadAt(b, int64(p.Off)); err != nil {
			return nil, err
		}
		at := int64(p.Off)
		for len(b) >= 12 {
			namesz, descsz := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
			size := 12 + int(align4(namesz)+align4(descsz))
			if size > len(b) {
				return nil, fmt.Errorf("a note of %d bytes in the %d left of its segment", size, len(b))
			}
			seg.notes = append(seg.notes, fileNote{raw: b[:size], name: string(bytes.TrimRight(b[12:12+namesz], "\x00")),
				typ: binary.LittleEndian.Uint32(b[8:]), desc: at + 12 + int64(align4(namesz)), descSize: descsz})
			b, at = b[size:], at+int64(size)
		}
		segs = append(segs, seg)
	}
	return segs, nil
}

func align4(n uint32) uint32 { return (n + 3) &^ 3 }
