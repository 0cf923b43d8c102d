package session

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"

	"vmdap/vmm"
	"vmdap/x86"
)

// The debug console's "dump FILE": the stopped machine written to an ELF
// core, what gdb's gcore is for a process, for a whole machine. The file
// has QEMU's dump-guest-memory layout (without paging), so vmdap (attach
// with "coreFile"), drgn and crash all read it:
//   - one PT_LOAD per range of guest-physical RAM (p_paddr; p_vaddr 0,
//     but for a Linux kernel its direct-map address, with one more
//     PT_LOAD for the kernel image at its own, as a kdump has: coreVirt);
//   - per vCPU an NT_PRSTATUS note ("CORE": the general registers as
//     x86-64's struct elf_prstatus has them; i386's, in an EM_386 core,
//     when the first vCPU is not in long mode, as QEMU writes it) and a
//     "QEMU" note (its
//     QEMUCPUState: general registers, segments with their bases,
//     limits and descriptor flags, GDTR, IDTR, CR0-CR4, KERNEL_GS_BASE);
//   - for a Linux kernel, a VMCOREINFO note: the text the kernel keeps
//     for kdump at vmcoreinfo_data (drgn and crash find its page tables,
//     KASLR offset and version there).
//
// vmdap's own VMM gives the RAM (vmm.RAMLayout) and reads it
// (vmm.PhysicalMemory); over QEMU's GDB stub, which knows no RAM layout,
// QEMU writes the file itself (its monitor's dump-guest-memory), and for a
// Linux kernel vmdap writes it again from that file, with the kernel's
// VMCOREINFO and virtual addresses, which QEMU's lacks. The file is
// written as it is read, a chunk at a time (guest RAM can be gigabytes),
// pages of zeros left as holes, to a temporary name beside it that is
// renamed once the dump is whole: a failed dump leaves no half file.

// The notes' register layouts are package x86's (x86.PRStatus,
// x86.QEMUCPUState), which vmm/core reads.
const (
	coreMaxInfo = 1 << 20
	// coreChunk is how much guest RAM is read at a time.
	coreChunk = 1 << 20
	corePage  = 4096
)

// isDumpCommand reports whether a console line is "dump FILE". A file
// name can start with what no expression has after a variable named dump
// (a letter, a digit, _ . ~ ", or / then not a number): "dump / 2" stays
// a division.
func isDumpCommand(l string) bool {
	rest, ok := strings.CutPrefix(l, "dump")
	if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return false
	}
	f := strings.TrimSpace(rest)
	if f == "" {
		return false
	}
	switch c := f[0]; {
	case isAlpha(c), c >= '0' && c <= '9', strings.IndexByte("_.~\"", c) >= 0:
		return true
	case c == '/':
		return len(f) > 1 && f[1] != ' ' && f[1] != '\t' && (f[1] < '0' || f[1] > '9')
	}
	return false
}

// dumpPath reads the file name of a "dump FILE" line: the rest of the
// line, or a double-quoted string; ~/ is the home directory, as in gdb.
// The name is made absolute (the dump is written there, and QEMU, whose
// working directory is not vmdap's, is told that name).
func dumpPath(line string) (string, error) {
	f := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "dump"))
	if strings.HasPrefix(f, `"`) {
		u, err := strconv.Unquote(f)
		if err != nil {
			return "", fmt.Errorf("dump: the file name %s is not a well-formed quoted string", f)
		}
		f = u
	}
	if f == "" {
		return "", errors.New("dump: a file name is needed, as in dump /tmp/guest.core")
	}
	for _, r := range f {
		if r < ' ' || r == 0x7f {
			return "", fmt.Errorf("dump: the file name %q has a control character", f)
		}
	}
	if rest, ok := strings.CutPrefix(f, "~/"); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("dump: %s: %w", f, err)
		}
		f = filepath.Join(home, rest)
	}
	abs, err := filepath.Abs(f)
	if err != nil {
		return "", fmt.Errorf("dump: %s: %w", f, err)
	}
	if st, err := os.Stat(abs); err == nil && st.IsDir() {
		return "", fmt.Errorf("dump: %s is a directory", abs)
	}
	return abs, nil
}

// dumpCommand writes the stopped machine to an ELF core.
func (s *Session) dumpCommand(ctx context.Context, line string, progress Progress) (string, error) {
	path, err := dumpPath(line)
	if err != nil {
		return "", err
	}
	var out string
	err = s.stopped(func() error {
		t := s.t.(*taskTarget).unwrap()
		pm, phys := t.PhysicalMemory()
		layout, hasRAM := t.(vmm.RAMLayout)
		mon, hasMonitor := t.(vmm.Monitor)
		var err error
		switch {
		case phys && hasRAM:
			out, err = s.writeCore(ctx, path, t, pm, layout.RAM(), progress)
		case hasMonitor:
			out, err = s.qemuDump(ctx, path, t, mon, progress)
		case s.dump != nil:
			err = errors.New("this session shows a core dump already: copy its file")
		default:
			err = errors.New("this target can neither read its guest-physical RAM nor ask its hypervisor to dump it (vmdap's own VMM and QEMU can)")
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("dump %s: %w", path, err)
	}
	return out, nil
}

// createBeside creates the temporary file a dump is written to, in the
// directory of path (so that the rename is atomic).
func createBeside(path string) (*os.File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("creating the file: %w", unwrapPath(err))
	}
	return f, nil
}

// writeCore writes the machine's RAM and vCPUs to path. Session.mu held,
// the target stopped. When ctx is done it stops and removes what it
// wrote.
func (s *Session) writeCore(ctx context.Context, path string, t vmm.Target, pm vmm.PhysicalMemory, ram []vmm.PhysRange, progress Progress) (string, error) {
	notes, x8664, err := coreNotes(t)
	if err != nil {
		return "", err
	}
	info, infoNote := s.vmcoreinfo()
	var virt coreVirt
	if info != nil {
		notes = appendNote(notes, "VMCOREINFO", 0, info)
		virt = s.linuxVirtual(ram)
	}
	if len(ram) == 0 {
		return "", errors.New("the target reports no RAM")
	}
	if len(ram)+1 >= 0xffff {
		return "", fmt.Errorf("%d RAM ranges: more than an ELF header counts without extended numbering", len(ram))
	}
	f, err := createBeside(path)
	if err != nil {
		return "", err
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	machine := elf.EM_386
	if x8664 {
		machine = elf.EM_X86_64
	}
	if virt.image.Size > 0 {
		infoNote += fmt.Sprintf(", and PT_LOADs at its direct map (%#x) and image (%#x) as a kdump has", virt.direct, virt.imageVA)
	}
	var total int64
	for _, r := range ram {
		total += int64(r.Size)
	}
	report := func(done int64) error {
		progress("Writing core dump", filepath.Base(path), done, total)
		if ctx.Err() != nil {
			return fmt.Errorf("cancelled after %d of %d MiB: nothing was kept", done>>20, total>>20)
		}
		return nil
	}
	size, err := writeCoreFile(f, machine, notes, ram, virt, pm, report)
	if err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("closing the file: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", fmt.Errorf("renaming the finished dump: %w", err)
	}
	done = true
	s.log.WithFields(logrus.Fields{"file": path, "vcpus": t.VCPUs(), "ram": total, "ranges": len(ram), "bytes": size, "vmcoreinfo": info != nil}).Info("core dump written")
	return fmt.Sprintf("wrote %s: an ELF core of %d vCPU(s) and %d MiB of guest RAM in %d range(s)%s (open it with an attach of \"coreFile\", drgn -c or crash)",
		path, t.VCPUs(), total>>20, len(ram), infoNote), nil
}

// writeCoreFile writes the ELF header, program headers, notes and RAM to
// f and returns the file's size. It tells report how many bytes of RAM
// are written after each chunk, and stops with report's error.
func writeCoreFile(f *os.File, machine elf.Machine, notes []byte, ram []vmm.PhysRange, virt coreVirt, pm vmm.PhysicalMemory, report func(done int64) error) (int64, error) {
	const ehsize, phentsize = 64, 56
	phnum := 1 + len(ram)
	if virt.image.Size > 0 {
		phnum++
	}
	noteOff := uint64(ehsize + phentsize*phnum)
	memOff := (noteOff + uint64(len(notes)) + corePage - 1) &^ (corePage - 1)
	var hdr bytes.Buffer
	eh := elf.Header64{
		Type: uint16(elf.ET_CORE), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT),
		Phoff: ehsize, Ehsize: ehsize, Phentsize: phentsize, Phnum: uint16(phnum),
	}
	copy(eh.Ident[:], elf.ELFMAG)
	eh.Ident[elf.EI_CLASS], eh.Ident[elf.EI_DATA], eh.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	binary.Write(&hdr, binary.LittleEndian, eh)
	binary.Write(&hdr, binary.LittleEndian, elf.Prog64{Type: uint32(elf.PT_NOTE), Off: noteOff, Filesz: uint64(len(notes)), Memsz: uint64(len(notes))})
	off := memOff
	for i, r := range ram {
		var va uint64
		if virt.direct != 0 {
			va = virt.direct + r.Addr
		}
		binary.Write(&hdr, binary.LittleEndian, elf.Prog64{Type: uint32(elf.PT_LOAD), Off: off, Vaddr: va, Paddr: r.Addr, Filesz: r.Size, Memsz: r.Size})
		if im := virt.image; im.Size > 0 && i == virt.imageIn {
			// The kernel image's bytes are this range's: no copy.
			binary.Write(&hdr, binary.LittleEndian, elf.Prog64{Type: uint32(elf.PT_LOAD), Off: off + im.Addr - r.Addr, Vaddr: virt.imageVA,
				Paddr: im.Addr, Filesz: im.Size, Memsz: im.Size})
		}
		off += r.Size
	}
	hdr.Write(notes)
	if _, err := f.WriteAt(hdr.Bytes(), 0); err != nil {
		return 0, fmt.Errorf("writing the headers: %w", err)
	}
	buf := make([]byte, coreChunk)
	off = memOff
	for _, r := range ram {
		for done := uint64(0); done < r.Size; {
			n := min(uint64(len(buf)), r.Size-done)
			pa := r.Addr + done
			if got, err := pm.ReadPhysical(buf[:n], pa); err != nil {
				return 0, fmt.Errorf("reading guest-physical %#x: %w", pa+uint64(got), err)
			}
			if err := writeSparse(f, buf[:n], int64(off+done)); err != nil {
				return 0, err
			}
			done += n
			if err := report(int64(off + done - memOff)); err != nil {
				return 0, err
			}
		}
		off += r.Size
	}
	// The last pages may be holes: the file's size says where RAM ends.
	if err := f.Truncate(int64(off)); err != nil {
		return 0, fmt.Errorf("sizing the file: %w", err)
	}
	return int64(off), nil
}

// coreVirt is what virtual addresses a Linux kernel's dump gives its
// PT_LOADs, as a kdump's /proc/vmcore does: each RAM range at its
// direct-map address, and one more PT_LOAD for the kernel image at its
// text-mapping address over the same bytes. drgn before 0.0.23 finds the
// kernel's top page table (swapper_pg_dir) by its virtual address only,
// and reads physical addresses only where a p_paddr is not 0: a dump
// without them cannot be read by it.
type coreVirt struct {
	direct  uint64        // page_offset_base (0: no virtual addresses)
	image   vmm.PhysRange // the kernel image, physical (Size 0: none)
	imageVA uint64        // its virtual address (_text)
	imageIn int           // the RAM range that holds it
}

// kernelText is __START_KERNEL_map, where x86-64 Linux maps its image.
const kernelText = 0xffffffff80000000

// linuxVirtual finds a Linux kernel's direct map and image (page_offset_base,
// phys_base, _text, _end). Session.mu held.
func (s *Session) linuxVirtual(ram []vmm.PhysRange) coreVirt {
	k := s.kview(s.curVCPU)
	pob, err := k.sym("page_offset_base")
	var v coreVirt
	if err == nil {
		v.direct, err = k.u64(pob)
	}
	if err != nil || v.direct < 1<<63 {
		v.direct = 0
	}
	pb, err1 := k.sym("phys_base")
	text, err2 := k.sym("_text")
	end, err3 := k.sym("_end")
	if err1 != nil || err2 != nil || err3 != nil || text < kernelText || end <= text {
		return v
	}
	physBase, err := k.u64(pb)
	if err != nil {
		return v
	}
	im := vmm.PhysRange{Addr: text - kernelText + physBase, Size: end - text}
	for i, r := range ram {
		if im.Addr >= r.Addr && im.Addr+im.Size <= r.Addr+r.Size {
			v.image, v.imageVA, v.imageIn = im, text, i
		}
	}
	return v
}

// writeSparse writes b at off, leaving its pages of zeros as holes.
func writeSparse(f *os.File, b []byte, off int64) error {
	var zero [corePage]byte
	start := -1 // of the run of pages being collected
	flush := func(end int) error {
		if start < 0 {
			return nil
		}
		_, err := f.WriteAt(b[start:end], off+int64(start))
		start = -1
		if err != nil {
			return fmt.Errorf("writing the file: %w", err)
		}
		return nil
	}
	for i := 0; i < len(b); i += corePage {
		end := min(i+corePage, len(b))
		if bytes.Equal(b[i:end], zero[:end-i]) {
			if err := flush(i); err != nil {
				return err
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	return flush(len(b))
}

// appendNote appends one ELF note, its name and data padded to 4 bytes.
func appendNote(b []byte, name string, typ uint32, desc []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(name)+1))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)))
	b = binary.LittleEndian.AppendUint32(b, typ)
	b = append(b, name...)
	b = append(b, make([]byte, 4-len(name)%4)...) // the NUL, then padding
	b = append(b, desc...)
	return append(b, make([]byte, (4-len(desc)%4)%4)...)
}

// coreNotes returns every vCPU's NT_PRSTATUS notes, then every vCPU's
// QEMU notes (QEMU's order), and whether the machine is written as
// x86-64 (longMode).
func coreNotes(t vmm.Target) ([]byte, bool, error) {
	n := t.VCPUs()
	if n == 0 {
		return nil, false, errors.New("the target has no vCPUs")
	}
	regs := make([]x86.Regs, n)
	sregs := make([]x86.SRegs, n)
	for v := range n {
		var err error
		if regs[v], err = t.Regs(v); err != nil {
			return nil, false, fmt.Errorf("vCPU %d's registers: %w", v, err)
		}
		if sregs[v], err = t.SRegs(v); err != nil {
			return nil, false, fmt.Errorf("vCPU %d's segment registers: %w", v, err)
		}
	}
	var b []byte
	for v := range n {
		// pr_pid: QEMU writes the CPU's index + 1.
		b = appendNote(b, "CORE", uint32(elf.NT_PRSTATUS), x86.PRStatus(uint32(v+1), regs[v], sregs[v], !longMode(sregs)))
	}
	for v := range n {
		b = appendNote(b, "QEMU", 0, x86.QEMUCPUState(regs[v], sregs[v]))
	}
	return b, longMode(sregs), nil
}

// longMode says whether QEMU would write the machine as x86-64 (EM_X86_64,
// NT_PRSTATUS notes of x86-64): its first CPU is in long mode. Else it is
// EM_386, with i386's notes.
func longMode(sregs []x86.SRegs) bool { return sregs[0].EFER&x86.EFERLMA != 0 }

// vmcoreinfo returns a Linux kernel's VMCOREINFO text (vmcoreinfo_data,
// vmcoreinfo_size), and what the dump's summary says of it. Session.mu
// held.
func (s *Session) vmcoreinfo() ([]byte, string) {
	if !s.isLinux() {
		return nil, ""
	}
	k := s.kview(s.curVCPU)
	symU64 := func(name string) (uint64, error) {
		a, err := k.sym(name)
		if err != nil {
			return 0, err
		}
		return k.u64(a)
	}
	b, err := func() ([]byte, error) {
		data, err := symU64("vmcoreinfo_data")
		if err != nil {
			return nil, err
		}
		size, err := symU64("vmcoreinfo_size")
		if err != nil {
			return nil, err
		}
		if data == 0 || size == 0 {
			return nil, errors.New("the kernel has not written it yet (crash_save_vmcoreinfo_init runs at subsys_initcall)")
		}
		if size > coreMaxInfo {
			return nil, fmt.Errorf("vmcoreinfo_size is %d bytes", size)
		}
		return k.read(data, int(size))
	}()
	if err != nil {
		s.log.WithError(err).Warn("core dump without VMCOREINFO")
		return nil, "; no VMCOREINFO (" + err.Error() + "): drgn and crash need it"
	}
	rel := ""
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "OSRELEASE="); ok {
			rel = " of Linux " + v
		}
	}
	return b, "; with the kernel's VMCOREINFO" + rel
}

// qemuDump has QEMU write the dump (its monitor's dump-guest-memory,
// without paging) to a temporary name beside path. For a Linux kernel
// that has its VMCOREINFO the file is then written again, as on vmdap's
// VMM, with QEMU's for the RAM (rewriteQEMUDump): QEMU's own has the
// kernel's VMCOREINFO only with -device vmcoreinfo and the guest's
// qemu_fw_cfg driver, and no virtual addresses, and drgn and crash need
// those. Otherwise QEMU's file is renamed to path as it is.
func (s *Session) qemuDump(ctx context.Context, path string, t vmm.Target, m vmm.Monitor, progress Progress) (string, error) {
	// The temporary name is made here and left for QEMU to open (QEMU
	// creates or truncates it).
	f, err := createBeside(path)
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp) // nothing once renamed
	// The monitor reads the name as a quoted string (its get_str): a
	// backslash and a double quote are escaped, no shell is involved.
	q := `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(tmp) + `"`
	out, err := m.MonitorCommand("dump-guest-memory " + q)
	if err != nil {
		// Not QEMU's, maybe: bhyve's stub has no monitor.
		return "", fmt.Errorf("this target reads no guest-physical RAM, and its hypervisor's monitor did not take QEMU's dump-guest-memory: %w", err)
	}
	out = strings.TrimSpace(strings.ReplaceAll(out, "\r\n", "\n"))
	if out != "" {
		return "", fmt.Errorf("QEMU's dump-guest-memory: %s", out)
	}
	st, err := os.Stat(tmp)
	if err != nil || st.Size() == 0 {
		return "", errors.New("QEMU reported no error but wrote nothing here: is it running on another machine? (its dump would be there)")
	}
	if ctx.Err() != nil { // (QEMU's own writing cannot be stopped)
		return "", errors.New("cancelled: QEMU's dump was written, and removed")
	}
	if s.isLinux() {
		if info, _ := s.vmcoreinfo(); info != nil {
			out, err := s.rewriteQEMUDump(ctx, path, tmp, t, progress)
			if err == nil || ctx.Err() != nil {
				return out, err
			}
			s.log.WithError(err).Warn("QEMU's dump kept as QEMU wrote it")
		}
	}
	// QEMU creates the file readable by its owner only (S_IRUSR).
	os.Chmod(tmp, 0o600)
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("renaming the finished dump: %w", err)
	}
	return fmt.Sprintf("wrote %s: QEMU's dump-guest-memory, an ELF core of %d MiB (open it with an attach of \"coreFile\", drgn -c or crash)", path, st.Size()>>20), nil
}

// rewriteQEMUDump writes the dump to path as writeCore does, its RAM read
// from QEMU's dump at tmp (an ELF core without paging: a PT_LOAD per RAM
// block, at its guest-physical address) and its vCPUs from the live
// target.
func (s *Session) rewriteQEMUDump(ctx context.Context, path, tmp string, t vmm.Target, progress Progress) (string, error) {
	f, err := elf.Open(tmp)
	if err != nil {
		return "", fmt.Errorf("reading QEMU's dump: %w", err)
	}
	defer f.Close()
	var r fileRAM
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Filesz > 0 {
			r.segs = append(r.segs, fileSeg{PhysRange: vmm.PhysRange{Addr: p.Paddr, Size: min(p.Filesz, p.Memsz)}, r: p.ReaderAt})
		}
	}
	sort.Slice(r.segs, func(i, j int) bool { return r.segs[i].Addr < r.segs[j].Addr })
	var ram []vmm.PhysRange
	for i, sg := range r.segs {
		if i > 0 && sg.Addr < r.segs[i-1].Addr+r.segs[i-1].Size {
			return "", fmt.Errorf("QEMU's dump has overlapping RAM at %#x", sg.Addr)
		}
		ram = append(ram, sg.PhysRange)
	}
	out, err := s.writeCore(ctx, path, t, r, ram, progress)
	if err != nil {
		return "", err
	}
	return out + "; the RAM from QEMU's dump-guest-memory", nil
}

// fileRAM reads guest-physical memory from a dump's segments.
type fileRAM struct{ segs []fileSeg }

type fileSeg struct {
	vmm.PhysRange
	r io.ReaderAt
}

func (m fileRAM) ReadPhysical(p []byte, addr uint64) (int, error) {
	n := 0
	for n < len(p) {
		a := addr + uint64(n)
		i := sort.Search(len(m.segs), func(i int) bool { return m.segs[i].Addr+m.segs[i].Size > a })
		if i == len(m.segs) || m.segs[i].Addr > a {
			return n, fmt.Errorf("guest-physical %#x is not in QEMU's dump", a)
		}
		sg := m.segs[i]
		c := int(min(uint64(len(p)-n), sg.Addr+sg.Size-a))
		got, err := sg.r.ReadAt(p[n:n+c], int64(a-sg.Addr))
		n += got
		if got < c {
			return n, fmt.Errorf("reading QEMU's dump at guest-physical %#x: %w", a+uint64(got), err)
		}
	}
	return n, nil
}

func (fileRAM) WritePhysical([]byte, uint64) (int, error) {
	return 0, errors.New("a dump being written is not written to")
}
