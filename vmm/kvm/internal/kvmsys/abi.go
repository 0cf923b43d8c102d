//go:build linux && amd64

package kvmsys

// ioctl numbers (values of the _IO/_IOR/_IOW/_IOWR macros for KVMIO 0xAE).
const (
	KVM_GET_API_VERSION        = 0xae00
	KVM_CREATE_VM              = 0xae01
	KVM_CHECK_EXTENSION        = 0xae03
	KVM_GET_VCPU_MMAP_SIZE     = 0xae04
	KVM_GET_SUPPORTED_CPUID    = 0xc008ae05
	KVM_CREATE_VCPU            = 0xae41
	KVM_SET_USER_MEMORY_REGION = 0x4020ae46
	KVM_SET_TSS_ADDR           = 0xae47
	KVM_SET_IDENTITY_MAP_ADDR  = 0x4008ae48
	KVM_RUN                    = 0xae80
	KVM_GET_REGS               = 0x8090ae81
	KVM_SET_REGS               = 0x4090ae82
	KVM_GET_SREGS              = 0x8138ae83
	KVM_SET_SREGS              = 0x4138ae84
	KVM_SET_CPUID2             = 0x4008ae90
	KVM_SET_GUEST_DEBUG        = 0x4048ae9b
	KVM_GET_VCPU_EVENTS        = 0x8040ae9f
	KVM_SET_VCPU_EVENTS        = 0x4040aea0
	KVM_GET_DEBUGREGS          = 0x8080aea1
	KVM_SET_DEBUGREGS          = 0x4080aea2
	KVM_CREATE_IRQCHIP         = 0xae60
	KVM_SIGNAL_MSI             = 0x4020aea5
	KVM_IRQ_LINE               = 0x4008ae61
	KVM_GET_IRQCHIP            = 0xc208ae62
	KVM_SET_IRQCHIP            = 0x8208ae63
	KVM_GET_MP_STATE           = 0x8004ae98
	KVM_SET_MP_STATE           = 0x4004ae99
	KVM_GET_FPU                = 0x81a0ae8c
	KVM_SET_FPU                = 0x41a0ae8d
	KVM_GET_XSAVE              = 0x9000aea4
	KVM_SET_XSAVE              = 0x5000aea5
	KVM_GET_MSRS               = 0xc008ae88
	KVM_SET_MSRS               = 0x4008ae89
)

// Multiprocessing states (struct kvm_mp_state), with an in-kernel irqchip.
const (
	KVM_MP_STATE_RUNNABLE      = 0
	KVM_MP_STATE_UNINITIALIZED = 1
	KVM_MP_STATE_INIT_RECEIVED = 2
	KVM_MP_STATE_HALTED        = 3
	KVM_MP_STATE_SIPI_RECEIVED = 4
)

// KVM_CHECK_EXTENSION capability numbers.
const (
	KVM_CAP_NR_VCPUS              = 9
	KVM_CAP_NR_MEMSLOTS           = 10
	KVM_CAP_SET_GUEST_DEBUG       = 23
	KVM_CAP_DEBUGREGS             = 50
	KVM_CAP_X86_ROBUST_SINGLESTEP = 51
	KVM_CAP_MAX_VCPUS             = 66
	KVM_CAP_SYNC_REGS             = 74
	KVM_CAP_READONLY_MEM          = 81
	KVM_CAP_IMMEDIATE_EXIT        = 136
	KVM_CAP_SET_GUEST_DEBUG2      = 195
)

// Exit reasons (kvm_run.exit_reason).
const (
	KVM_EXIT_UNKNOWN        = 0
	KVM_EXIT_EXCEPTION      = 1
	KVM_EXIT_IO             = 2
	KVM_EXIT_HYPERCALL      = 3
	KVM_EXIT_DEBUG          = 4
	KVM_EXIT_HLT            = 5
	KVM_EXIT_MMIO           = 6
	KVM_EXIT_IRQ_WINDOW     = 7
	KVM_EXIT_SHUTDOWN       = 8
	KVM_EXIT_FAIL_ENTRY     = 9
	KVM_EXIT_INTR           = 10
	KVM_EXIT_INTERNAL_ERROR = 17
	KVM_EXIT_SYSTEM_EVENT   = 24

	KVM_EXIT_IO_IN  = 0
	KVM_EXIT_IO_OUT = 1

	KVM_INTERNAL_ERROR_EMULATION = 1
)

// kvm_guest_debug.control bits.
const (
	KVM_GUESTDBG_ENABLE     = 0x1
	KVM_GUESTDBG_SINGLESTEP = 0x2
	KVM_GUESTDBG_USE_SW_BP  = 0x10000
	KVM_GUESTDBG_USE_HW_BP  = 0x20000
	KVM_GUESTDBG_INJECT_DB  = 0x40000
	KVM_GUESTDBG_INJECT_BP  = 0x80000
	KVM_GUESTDBG_BLOCKIRQ   = 0x100000
)

// Sync-regs selectors and memory-region flags.
const (
	KVM_SYNC_X86_REGS   = 0x1
	KVM_SYNC_X86_SREGS  = 0x2
	KVM_SYNC_X86_EVENTS = 0x4

	KVM_MEM_READONLY = 0x2
)

// Regs mirrors struct kvm_regs (144 bytes).
type Regs struct {
	RAX, RBX, RCX, RDX, RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11, R12, R13, R14, R15   uint64
	RIP, RFLAGS                            uint64
}

// Segment mirrors struct kvm_segment (24 bytes).
type Segment struct {
	Base                           uint64
	Limit                          uint32
	Selector                       uint16
	Type                           uint8
	Present, DPL, DB, S, L, G, AVL uint8
	Unusable                       uint8
	_                              uint8
}

// DTable mirrors struct kvm_dtable (16 bytes).
type DTable struct {
	Base  uint64
	Limit uint16
	_     [3]uint16
}

// SRegs mirrors struct kvm_sregs (312 bytes).
type SRegs struct {
	CS, DS, ES, FS, GS, SS  Segment
	TR, LDT                 Segment
	GDT, IDT                DTable
	CR0, CR2, CR3, CR4, CR8 uint64
	EFER                    uint64
	APICBase                uint64
	InterruptBitmap         [4]uint64
}

// GuestDebug mirrors struct kvm_guest_debug (72 bytes).
type GuestDebug struct {
	Control  uint32
	_        uint32
	DebugReg [8]uint64
}

// DebugRegs mirrors struct kvm_debugregs (128 bytes).
type DebugRegs struct {
	DB       [4]uint64
	DR6, DR7 uint64
	Flags    uint64
	_        [9]uint64
}

// MSRs mirrors struct kvm_msrs with room for one struct kvm_msr_entry
// (the header is 8 bytes, an entry 16).
type MSRs struct {
	NMSRs uint32
	_     uint32
	Entry MSREntry
}

// MSREntry mirrors struct kvm_msr_entry.
type MSREntry struct {
	Index uint32
	_     uint32
	Data  uint64
}

// MSR_KERNEL_GS_BASE is IA32_KERNEL_GS_BASE, the base SWAPGS exchanges
// with GS's (Intel SDM Vol. 4, Table 2-2).
const MSR_KERNEL_GS_BASE = 0xc0000102

// VCPUEvents mirrors struct kvm_vcpu_events (64 bytes).
type VCPUEvents struct {
	ExceptionInjected   uint8
	ExceptionNr         uint8
	ExceptionHasError   uint8
	ExceptionPending    uint8
	ExceptionErrorCode  uint32
	InterruptInjected   uint8
	InterruptNr         uint8
	InterruptSoft       uint8
	InterruptShadow     uint8
	NMIInjected         uint8
	NMIPending          uint8
	NMIMasked           uint8
	_                   uint8
	SIPIVector          uint32
	Flags               uint32
	SMI                 [4]uint8
	TripleFaultPending  uint8
	_                   [26]uint8
	ExceptionHasPayload uint8
	ExceptionPayload    uint64
}

// UserspaceMemoryRegion mirrors struct kvm_userspace_memory_region (32 bytes).
type UserspaceMemoryRegion struct {
	Slot          uint32
	Flags         uint32
	GuestPhysAddr uint64
	MemorySize    uint64
	UserspaceAddr uint64
}

// FPU mirrors struct kvm_fpu (416 bytes): the x87 and SSE state.
type FPU struct {
	FPR        [8][16]uint8
	FCW, FSW   uint16
	FTWX       uint8
	_          uint8
	LastOpcode uint16
	LastIP     uint64
	LastDP     uint64
	XMM        [16][16]uint8
	MXCSR      uint32
	_          uint32
}

// XSave mirrors struct kvm_xsave (4096 bytes): the XSAVE area, whose
// first 512 bytes are FXSAVE's (MXCSR at byte 24).
type XSave struct {
	Region [1024]uint32
}

// XSaveMXCSR is MXCSR's index in XSave.Region (byte 24 of the legacy
// area): KVM_SET_FPU does not write it.
const XSaveMXCSR = 6

// CPUIDEntry2 mirrors struct kvm_cpuid_entry2 (40 bytes).
type CPUIDEntry2 struct {
	Function, Index, Flags uint32
	EAX, EBX, ECX, EDX     uint32
	_                      [3]uint32
}

// kvm_run layout: offsets of the fields vmdap uses.
const (
	runImmediateExit = 1
	runExitReason    = 8
	runUnion         = 32 // the exit-reason union
	runValidRegs     = 288
	runDirtyRegs     = 296
	runSyncRegs      = 304 // struct kvm_sync_regs: regs, sregs, events
)

// IOExit is kvm_run.io.
type IOExit struct {
	Direction  uint8
	Size       uint8
	Port       uint16
	Count      uint32
	DataOffset uint64
}

// MMIOExit is kvm_run.mmio.
type MMIOExit struct {
	PhysAddr uint64
	Data     [8]byte
	Len      uint32
	IsWrite  uint8
}

// DebugExit is kvm_run.debug.arch (struct kvm_debug_exit_arch).
type DebugExit struct {
	Exception uint32
	_         uint32
	PC        uint64
	DR6, DR7  uint64
}

// IRQChip mirrors struct kvm_irqchip (520 bytes): ChipID 0 and 1 are the
// master and slave PIC, whose state (struct kvm_pic_state) begins State.
type IRQChip struct {
	ChipID, Pad uint32
	State       [512]byte
}

// PICIMR is the offset of the interrupt mask register in kvm_pic_state.
const PICIMR = 2

// IRQLevel mirrors struct kvm_irq_level (8 bytes).
type IRQLevel struct {
	IRQ, Level uint32
}

// MSI mirrors struct kvm_msi (32 bytes).
type MSI struct {
	AddressLo, AddressHi, Data, Flags, DevID uint32
	_                                        [12]uint8
}

// InternalExit is kvm_run.internal.
type InternalExit struct {
	Suberror uint32
	NData    uint32
	Data     [16]uint64
}
