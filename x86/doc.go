// Package x86 is vmdap's pure knowledge of the x86-64 architecture: neutral
// register types (general, segment, control and debug registers, and the
// x87 and SSE state in FXSAVE's layout), the bit layouts of RFLAGS, CR0,
// CR4, EFER, DR6/DR7, MXCSR and the x87 control and status words,
// exception vectors, the decoding mode of a CPU state, the three register
// numberings that differ between KVM, GDB and DWARF, the register layouts
// of an ELF core's notes (Linux's struct elf_prstatus, QEMU's
// QEMUCPUState) that vmdap's dumps are written in and read from, and the
// frame setups gdb's prologue analysers recognise.
//
// It has no dependency on any backend and is tested without hardware. Each
// table cites where it comes from: the Intel SDM (Vol. 3A §2.3 control
// registers, §2.2.1 EFER, §17.2 debug registers, §6.3.1 exception vectors;
// Vol. 1 §10.5.1 FXSAVE's layout, §10.2.3 MXCSR, §8.1 the x87 words),
// the System V psABI for AMD64 (Figure 3.36, DWARF register numbers) and
// GDB's features/i386/64bit-core.xml.
package x86
