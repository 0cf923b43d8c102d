//go:build linux && amd64

package kvm

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"vmdap/vmm/kvm/internal/kvmsys"
	"vmdap/x86"
)

// The guest's CPUID is KVM_GET_SUPPORTED_CPUID minus the features whose
// instructions this host's KVM cannot execute for a ring-0 guest. On a VT-x
// or AMD-V host the guest runs them natively and nothing is hidden; on a
// host whose KVM emulates ring 0 (PVM) the instruction emulator lacks some
// of them (lock cmpxchg16b, for one), and a kernel told it has CX16 stops
// at its first cmpxchg_double with an emulation failure. The probe guest
// runs each candidate instruction at ring 0 and hides what fails, with the
// features that depend on it. Nothing is decided from the host's name.

// cpuidBit is one feature bit of a CPUID leaf.
type cpuidBit struct {
	leaf, sub uint32
	reg       byte // 'a', 'b', 'c' or 'd'
	bit       uint
}

func (b cpuidBit) String() string {
	return fmt.Sprintf("CPUID.%#x.%d:E%cX[%d]", b.leaf, b.sub, b.reg-'a'+'A', b.bit)
}

// CPUID feature bits vmdap probes or hides (SDM Vol. 2A, CPUID; AMD APM
// Vol. 3, Appendix E; Linux Documentation/virt/kvm/x86/cpuid.rst).
var cpuidBits = map[string]cpuidBit{
	"pclmulqdq": {1, 0, 'c', 1}, "ssse3": {1, 0, 'c', 9}, "fma": {1, 0, 'c', 12}, "cx16": {1, 0, 'c', 13},
	"sse4_1": {1, 0, 'c', 19}, "sse4_2": {1, 0, 'c', 20}, "movbe": {1, 0, 'c', 22}, "popcnt": {1, 0, 'c', 23},
	"aes": {1, 0, 'c', 25}, "xsave": {1, 0, 'c', 26}, "osxsave": {1, 0, 'c', 27}, "avx": {1, 0, 'c', 28},
	"f16c": {1, 0, 'c', 29}, "rdrand": {1, 0, 'c', 30}, "clflush": {1, 0, 'd', 19},
	"fsgsbase": {7, 0, 'b', 0}, "bmi1": {7, 0, 'b', 3}, "avx2": {7, 0, 'b', 5}, "bmi2": {7, 0, 'b', 8},
	"invpcid": {7, 0, 'b', 10}, "avx512f": {7, 0, 'b', 16}, "avx512dq": {7, 0, 'b', 17}, "rdseed": {7, 0, 'b', 18},
	"adx": {7, 0, 'b', 19}, "smap": {7, 0, 'b', 20}, "avx512ifma": {7, 0, 'b', 21}, "clflushopt": {7, 0, 'b', 23},
	"clwb": {7, 0, 'b', 24}, "avx512pf": {7, 0, 'b', 26}, "avx512er": {7, 0, 'b', 27}, "avx512cd": {7, 0, 'b', 28},
	"sha_ni": {7, 0, 'b', 29}, "avx512bw": {7, 0, 'b', 30}, "avx512vl": {7, 0, 'b', 31},
	"avx512vbmi": {7, 0, 'c', 1}, "pku": {7, 0, 'c', 3}, "avx512_vbmi2": {7, 0, 'c', 6}, "gfni": {7, 0, 'c', 8},
	"vaes": {7, 0, 'c', 9}, "vpclmulqdq": {7, 0, 'c', 10}, "avx512_vnni": {7, 0, 'c', 11}, "avx512_bitalg": {7, 0, 'c', 12},
	"avx512_vpopcntdq": {7, 0, 'c', 14}, "rdpid": {7, 0, 'c', 22}, "serialize": {7, 0, 'd', 14},
	"avx512_fp16": {7, 0, 'd', 23}, "avx_vnni": {7, 1, 'a', 4}, "avx512_bf16": {7, 1, 'a', 5},
	"xsaveopt": {0xd, 1, 'a', 0}, "xsavec": {0xd, 1, 'a', 1}, "xgetbv1": {0xd, 1, 'a', 2}, "xsaves": {0xd, 1, 'a', 3},
	"abm": {0x80000001, 0, 'c', 5}, "3dnowprefetch": {0x80000001, 0, 'c', 8}, "xop": {0x80000001, 0, 'c', 11},
	"fma4": {0x80000001, 0, 'c', 16}, "rdtscp": {0x80000001, 0, 'd', 27},
	"kvm_pv_unhalt": {0x40000001, 0, 'a', 7}, "kvm_pv_send_ipi": {0x40000001, 0, 'a', 11},
	"kvm_pv_sched_yield": {0x40000001, 0, 'a', 13},
}

// Features that need AVX's register state, hidden along with it.
var avxDeps = []string{"fma", "f16c", "avx2", "avx512f", "avx512dq", "avx512ifma", "avx512pf", "avx512er", "avx512cd",
	"avx512bw", "avx512vl", "avx512vbmi", "avx512_vbmi2", "vaes", "vpclmulqdq", "avx512_vnni", "avx512_bitalg",
	"avx512_vpopcntdq", "avx512_fp16", "avx_vnni", "avx512_bf16", "xop", "fma4"}

// Probe code building blocks (bytes checked against GNU as).
var (
	// mov $pData,%edi
	pcMovRDIData = []byte{0xbf, 0x00, 0x00, 0x30, 0x00}
	// CR4.OSXSAVE; xor %ecx,%ecx; xor %edx,%edx; mov $xcr0,%eax; xsetbv
	pcXsaveSetup = cat(crOr(x86.CR4OSXSAVE), []byte{0x31, 0xc9, 0x31, 0xd2, 0xb8, 3, 0, 0, 0, 0x0f, 0x01, 0xd1}, pcMovRDIData)
	pcAVXSetup   = cat(crOr(x86.CR4OSXSAVE), []byte{0x31, 0xc9, 0x31, 0xd2, 0xb8, 7, 0, 0, 0, 0x0f, 0x01, 0xd1})
)

// crOr is mov %cr4,%rax; or $bit,%eax; mov %rax,%cr4.
func crOr(bit uint32) []byte {
	return []byte{0x0f, 0x20, 0xe0, 0x0d, byte(bit), byte(bit >> 8), byte(bit >> 16), byte(bit >> 24), 0x0f, 0x22, 0xe0}
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// cpuidProbe is an instruction a kernel runs at ring 0 once CPUID offers
// its feature.
type cpuidProbe struct {
	feature string   // key of cpuidBits
	insn    string   // the instruction, for messages
	code    []byte   // setup and the instruction; the prober appends out; hlt
	hides   []string // features hidden along with it
	after   string   // probed only if this feature was not hidden
}

var cpuidProbes = []cpuidProbe{
	{feature: "cx16", insn: "lock cmpxchg16b", code: cat(pcMovRDIData, []byte{0xf0, 0x48, 0x0f, 0xc7, 0x0f})},
	{feature: "movbe", insn: "movbe", code: cat(pcMovRDIData, []byte{0x0f, 0x38, 0xf0, 0x07})},
	{feature: "popcnt", insn: "popcnt", code: []byte{0xf3, 0x48, 0x0f, 0xb8, 0xc0}},
	{feature: "rdrand", insn: "rdrand", code: []byte{0x0f, 0xc7, 0xf0}},
	{feature: "rdseed", insn: "rdseed", code: []byte{0x0f, 0xc7, 0xf8}},
	{feature: "rdtscp", insn: "rdtscp", code: []byte{0x0f, 0x01, 0xf9}},
	{feature: "rdpid", insn: "rdpid", code: []byte{0xf3, 0x0f, 0xc7, 0xf8}},
	{feature: "clflush", insn: "clflush", code: cat(pcMovRDIData, []byte{0x0f, 0xae, 0x3f})},
	{feature: "clflushopt", insn: "clflushopt", code: cat(pcMovRDIData, []byte{0x66, 0x0f, 0xae, 0x3f})},
	{feature: "clwb", insn: "clwb", code: cat(pcMovRDIData, []byte{0x66, 0x0f, 0xae, 0x37})},
	{feature: "3dnowprefetch", insn: "prefetchw", code: cat(pcMovRDIData, []byte{0x0f, 0x0d, 0x0f})},
	{feature: "abm", insn: "lzcnt", code: []byte{0xf3, 0x0f, 0xbd, 0xc0}},
	{feature: "bmi1", insn: "andn", code: []byte{0xc4, 0xe2, 0x78, 0xf2, 0xc0}},
	{feature: "bmi2", insn: "mulx", code: []byte{0xc4, 0xe2, 0x7b, 0xf6, 0xc0}},
	{feature: "adx", insn: "adcx", code: []byte{0x66, 0x0f, 0x38, 0xf6, 0xc0}},
	{feature: "fsgsbase", insn: "rdgsbase/wrgsbase", code: cat(crOr(x86.CR4FSGSBASE), []byte{0xf3, 0x48, 0x0f, 0xae, 0xc8, 0xf3, 0x48, 0x0f, 0xae, 0xd8})},
	{feature: "smap", insn: "stac/clac", code: []byte{0x0f, 0x01, 0xcb, 0x0f, 0x01, 0xca}},
	{feature: "invpcid", insn: "invpcid", code: cat(pcMovRDIData, []byte{0xb8, 2, 0, 0, 0, 0x66, 0x0f, 0x38, 0x82, 0x07})},
	{feature: "pku", insn: "rdpkru/wrpkru", code: cat(crOr(x86.CR4PKE), []byte{0x31, 0xc9, 0x31, 0xd2, 0x0f, 0x01, 0xee, 0x0f, 0x01, 0xef})},
	{feature: "serialize", insn: "serialize", code: []byte{0x0f, 0x01, 0xe8}},
	{feature: "ssse3", insn: "pshufb", code: []byte{0x66, 0x0f, 0x38, 0x00, 0xc0}},
	{feature: "sse4_1", insn: "ptest", code: []byte{0x66, 0x0f, 0x38, 0x17, 0xc0}},
	{feature: "sse4_2", insn: "crc32", code: []byte{0xf2, 0x0f, 0x38, 0xf0, 0xc0}},
	{feature: "pclmulqdq", insn: "pclmulqdq", code: []byte{0x66, 0x0f, 0x3a, 0x44, 0xc0, 0x00}},
	{feature: "aes", insn: "aesenc", code: []byte{0x66, 0x0f, 0x38, 0xdc, 0xc0}},
	{feature: "sha_ni", insn: "sha1nexte", code: []byte{0x0f, 0x38, 0xc8, 0xc0}},
	{feature: "gfni", insn: "gf2p8mulb", code: []byte{0x66, 0x0f, 0x38, 0xcf, 0xc0}},
	{feature: "xsave", insn: "xsetbv/xsave/xrstor", code: cat(pcXsaveSetup, []byte{0x0f, 0xae, 0x27, 0x0f, 0xae, 0x2f}),
		hides: append([]string{"osxsave", "avx", "xsaveopt", "xsavec", "xgetbv1", "xsaves"}, avxDeps...)},
	{feature: "xsaveopt", insn: "xsaveopt", after: "xsave", code: cat(pcXsaveSetup, []byte{0x0f, 0xae, 0x37})},
	{feature: "xsavec", insn: "xsavec", after: "xsave", code: cat(pcXsaveSetup, []byte{0x0f, 0xc7, 0x27})},
	{feature: "xsaves", insn: "xsaves", after: "xsave", code: cat(pcXsaveSetup, []byte{0x0f, 0xc7, 0x2f})},
	{feature: "avx", insn: "vxorps %ymm0", after: "xsave", code: cat(pcAVXSetup, []byte{0xc5, 0xfc, 0x57, 0xc0}), hides: avxDeps},
	{feature: "avx2", insn: "vpxor %ymm0", after: "avx", code: cat(pcAVXSetup, []byte{0xc5, 0xfd, 0xef, 0xc0})},
	// KVM's paravirtual features that make hypercalls (vmcall or vmmcall by
	// vendor; an unknown hypercall number returns -KVM_ENOSYS).
	{feature: "kvm_pv_send_ipi", insn: "KVM hypercall", hides: []string{"kvm_pv_unhalt", "kvm_pv_sched_yield"}},
}

// HiddenFeature is a CPUID feature the guest is not offered, and why.
type HiddenFeature struct {
	Name string   // as /proc/cpuinfo spells it
	Bit  string   // e.g. CPUID.0x1.0:ECX[13]
	Insn string   // the instruction probed
	Why  string   // what happened when the probe guest ran it
	Also []string // dependent features hidden with it
	// Visible lists the features (Name and Also) the guest still sees
	// after KVM_SET_CPUID2 cleared them: on some hosts (PVM) CPUID shows
	// the host's bit for features KVM does not manage. A Linux guest is
	// told on its command line instead (clearcpuid=).
	Visible []string
}

func (f HiddenFeature) String() string {
	s := fmt.Sprintf("%s (%s: %s)", f.Name, f.Insn, f.Why)
	if len(f.Also) > 0 {
		s += ", with " + strings.Join(f.Also, " ")
	}
	return s
}

// Ring0Gap is an x86-64 baseline instruction this host cannot run at
// ring 0. It has no CPUID bit to hide; the note says what uses it.
type Ring0Gap struct {
	Insn, Why, Note string
}

// Baseline instructions worth knowing about: they have no CPUID bit to
// hide, so a kernel that runs them at ring 0 stops there.
var ring0Baseline = []struct {
	insn, note string
	code       []byte
}{
	{"verw", "Linux's CPU-bug mitigations clear CPU buffers with it on every return to user space: boot Linux with mitigations=off",
		[]byte{0x66, 0xc7, 0x44, 0x24, 0xf8, 0x10, 0x00, 0x0f, 0x00, 0x6c, 0x24, 0xf8}}, // movw $0x10,-8(%rsp); verw -8(%rsp)
	{"fxsave/fxrstor", "a kernel saves FPU state with it when XSAVE is absent", cat(pcMovRDIData, []byte{0x0f, 0xae, 0x07, 0x0f, 0xae, 0x0f})},
	{"pxor", "SSE2 at ring 0 (kernel_fpu_begin users: crypto, RAID, checksums)", []byte{0x66, 0x0f, 0xef, 0xc0}},
	{"ldmxcsr", "kernel_fpu_begin loads MXCSR with it", cat(pcMovRDIData, []byte{0xc7, 0x07, 0x80, 0x1f, 0, 0, 0x0f, 0xae, 0x17})},
	{"fwait", "Linux runs it in fpu__drop; vmdap completes it itself when no x87 exception is pending", []byte{0x9b}},
}

// cpuidView is the guest's view of CPUID: the values the CPUID
// instruction returns at ring 0, by leaf and subleaf.
type cpuidView map[[2]uint32][4]uint32

// has reports whether software that honours the maximum leaves (leaf 0
// and 0x80000000 EAX) sees the feature.
func (v cpuidView) has(b cpuidBit) bool {
	if b.leaf < 0x40000000 && b.leaf > v[[2]uint32{0, 0}][0] {
		return false
	}
	r, ok := v[[2]uint32{b.leaf, b.sub}]
	if !ok {
		return false
	}
	return r[b.reg-'a']&(1<<b.bit) != 0
}

// cpuidRead runs CPUID at ring 0 in the probe guest for leaf 0 and every
// leaf the probes look at.
func (p *prober) cpuidRead() cpuidView {
	v := cpuidView{}
	read := func(leaf, sub uint32) {
		key := [2]uint32{leaf, sub}
		if _, done := v[key]; done {
			return
		}
		// mov $leaf,%eax; mov $sub,%ecx; cpuid
		code := []byte{0xb8, 0, 0, 0, 0, 0xb9, 0, 0, 0, 0, 0x0f, 0xa2, 0xe6, pPort, 0xf4}
		binary.LittleEndian.PutUint32(code[1:], leaf)
		binary.LittleEndian.PutUint32(code[6:], sub)
		_ = kvmsys.SetSRegs(p.vcpu, &p.sregs0)
		p.load(pCode+0x800, code)
		if reason, r := p.enter(); reason == kvmsys.KVM_EXIT_IO {
			v[key] = [4]uint32{uint32(r.RAX), uint32(r.RBX), uint32(r.RCX), uint32(r.RDX)}
		}
	}
	read(0, 0)
	for _, b := range cpuidBits {
		read(b.leaf, b.sub)
	}
	return v
}

// hasBit reports whether the CPUID entries set b.
func hasBit(entries []kvmsys.CPUIDEntry2, b cpuidBit) bool {
	for i := range entries {
		if e := &entries[i]; e.Function == b.leaf && e.Index == b.sub {
			return *cpuidReg(e, b.reg)&(1<<b.bit) != 0
		}
	}
	return false
}

func cpuidReg(e *kvmsys.CPUIDEntry2, reg byte) *uint32 {
	switch reg {
	case 'a':
		return &e.EAX
	case 'b':
		return &e.EBX
	case 'c':
		return &e.ECX
	}
	return &e.EDX
}

// guestCPUID returns the supported CPUID minus the hidden features.
func (h *HostInfo) guestCPUID(supported []kvmsys.CPUIDEntry2) []kvmsys.CPUIDEntry2 {
	return hideCPUID(supported, h.CPUIDHidden, h.MaxBasicLeaf)
}

// hideCPUID clears the hidden features' bits and, when maxBasic is not 0,
// lowers the maximum basic leaf (leaf 0 EAX) to it.
func hideCPUID(supported []kvmsys.CPUIDEntry2, hidden []HiddenFeature, maxBasic uint32) []kvmsys.CPUIDEntry2 {
	out := append([]kvmsys.CPUIDEntry2(nil), supported...)
	for i := range out {
		if out[i].Function == 0 && maxBasic != 0 && out[i].EAX > maxBasic {
			out[i].EAX = maxBasic
		}
	}
	for _, f := range hidden {
		for _, name := range append([]string{f.Name}, f.Also...) {
			b, ok := cpuidBits[name]
			if !ok {
				continue
			}
			for i := range out {
				if e := &out[i]; e.Function == b.leaf && e.Index == b.sub {
					*cpuidReg(e, b.reg) &^= 1 << b.bit
				}
			}
			if name == "xsave" {
				// No XSAVE: no processor extended state enumeration.
				for i := range out {
					if out[i].Function == 0xd {
						out[i].EAX, out[i].EBX, out[i].ECX, out[i].EDX = 0, 0, 0, 0
					}
				}
			}
		}
	}
	return out
}

// hiddenNames lists the hidden features, dependents included.
func (h *HostInfo) hiddenNames() []string {
	var names []string
	for _, f := range h.CPUIDHidden {
		names = append(names, f.Name)
		names = append(names, f.Also...)
	}
	return names
}

// LinuxClearCPUID lists the hidden features a guest still sees in CPUID,
// for Linux's clearcpuid= parameter (which also clears what depends on a
// feature, so a visible feature's dependents need no name of their own).
func (h *HostInfo) LinuxClearCPUID() []string {
	var names []string
	for _, f := range h.CPUIDHidden {
		if slices.Contains(f.Visible, f.Name) {
			names = append(names, f.Name)
		} else {
			names = append(names, f.Visible...)
		}
	}
	return names
}

// linuxCmdline adds clearcpuid= for the hidden features a Linux guest
// would still see, extending the user's own clearcpuid= if there is one.
func linuxCmdline(cmdline string, clear []string) string {
	if len(clear) == 0 {
		return cmdline
	}
	words := strings.Fields(cmdline)
	for i, w := range words {
		if v, ok := strings.CutPrefix(w, "clearcpuid="); ok {
			words[i] = "clearcpuid=" + strings.Join(append([]string{v}, clear...), ",")
			return strings.Join(words, " ")
		}
	}
	return strings.TrimSpace(cmdline + " clearcpuid=" + strings.Join(clear, ","))
}

// probeCPUID runs, at ring 0 in the probe guest, each candidate
// instruction whose feature the guest sees in CPUID, and records what this
// host cannot run; then it checks, on a second vCPU given the reduced
// CPUID, which of those the guest still sees.
func (h *HostInfo) probeCPUID(p *prober, supported []kvmsys.CPUIDEntry2, entry x86.SRegs) {
	// The probes after this one go on with the first vCPU.
	vcpu, run, sregs := p.vcpu, p.run, p.sregs0
	defer func() { p.vcpu, p.run, p.sregs0 = vcpu, run, sregs }()
	seen := p.cpuidRead()
	hidden := map[string]bool{}
	amd := isAMDVendor(supported)
	for _, c := range cpuidProbes {
		b := cpuidBits[c.feature]
		if !seen.has(b) || hidden[c.feature] || (c.after != "" && (hidden[c.after] || !seen.has(cpuidBits[c.after]))) {
			continue
		}
		h.CPUIDProbed++
		code := c.code
		if code == nil { // the KVM hypercall of this vendor
			code = []byte{0xb8, 0xff, 0xff, 0, 0, 0x0f, 0x01, 0xc1} // mov $0xffff,%eax; vmcall
			if amd {
				code[7] = 0xd9 // vmmcall
			}
		}
		why := p.tryInsn(code)
		if why == "" {
			continue
		}
		hidden[c.feature] = true
		f := HiddenFeature{Name: c.feature, Bit: b.String(), Insn: c.insn, Why: why}
		for _, d := range c.hides {
			if seen.has(cpuidBits[d]) && !hidden[d] {
				hidden[d] = true
				f.Also = append(f.Also, d)
			}
		}
		h.CPUIDHidden = append(h.CPUIDHidden, f)
	}
	for _, c := range ring0Baseline {
		if why := p.tryInsn(c.code); why != "" {
			h.Ring0Gaps = append(h.Ring0Gaps, Ring0Gap{Insn: c.insn, Why: why, Note: c.note})
		}
	}
	if len(h.CPUIDHidden) == 0 {
		return
	}
	// What does a guest given the reduced CPUID see? Where the host shows
	// its own bits of leaf 7 whatever KVM is told, the leaf itself goes:
	// the maximum basic leaf drops to 6, as on a CPU that predates leaf
	// 7, so that code which checks it (the bzImage's decompressor, whose
	// zstd picks BMI2 from leaf 7, as well as the kernel) sees none of them.
	after := h.cpuidAfter(p, supported, entry, 1)
	for _, f := range h.CPUIDHidden {
		for _, name := range append([]string{f.Name}, f.Also...) {
			if b := cpuidBits[name]; b.leaf >= 7 && b.leaf < 0x40000000 && after.has(b) {
				h.MaxBasicLeaf = 6
			}
		}
	}
	if h.MaxBasicLeaf != 0 {
		if after = h.cpuidAfter(p, supported, entry, 2); after[[2]uint32{0, 0}][0] != h.MaxBasicLeaf {
			h.MaxBasicLeaf = 0 // the host ignores it too: nothing gained
			after = h.cpuidAfter(p, supported, entry, 3)
		}
	}
	for i := range h.CPUIDHidden {
		f := &h.CPUIDHidden[i]
		for _, name := range append([]string{f.Name}, f.Also...) {
			if after.has(cpuidBits[name]) {
				f.Visible = append(f.Visible, name)
			}
		}
	}
}

// cpuidAfter reads, on a new probe vCPU with the given id, what a guest
// given the reduced CPUID sees.
func (h *HostInfo) cpuidAfter(p *prober, supported []kvmsys.CPUIDEntry2, entry x86.SRegs, id int) cpuidView {
	if err := p.addVCPU(id, hideCPUID(supported, h.CPUIDHidden, h.MaxBasicLeaf), entry); err != nil {
		return cpuidView{}
	}
	return p.cpuidRead()
}

// isAMDVendor reports whether CPUID leaf 0 names AMD or Hygon (whose KVM
// hypercall is vmmcall).
func isAMDVendor(entries []kvmsys.CPUIDEntry2) bool {
	for _, e := range entries {
		if e.Function == 0 {
			return e.EBX == 0x68747541 || e.EBX == 0x6f677948 // "Auth", "Hygo"
		}
	}
	return false
}

// tryInsn runs code at ring 0 in the probe guest from a fresh register
// state and says why it did not reach the end ("" when it did).
func (p *prober) tryInsn(code []byte) string {
	const at = pCode + 0x800
	_ = kvmsys.SetSRegs(p.vcpu, &p.sregs0)
	p.debug(0, [8]uint64{})
	clear(p.ram[pData : pData+0x1000])
	p.load(at, append(append([]byte(nil), code...), 0xe6, pPort, 0xf4))
	// Run in short slices: an instruction KVM re-enters for ever (a
	// hypercall on some hosts) keeps RIP where it is, slice after slice; a
	// slow host only delays the end.
	var (
		reason uint32
		r      kvmsys.Regs
		last   uint64
		stuck  int
	)
	for slice := 0; slice < 100; slice++ {
		reason, r = p.enterFor(20 * time.Millisecond)
		if reason != kvmsys.KVM_EXIT_INTR {
			break
		}
		if r.RIP != at && r.RIP == last {
			if stuck++; stuck == 2 {
				return fmt.Sprintf("it never completes at ring 0 (KVM re-enters it at %#x for ever)", r.RIP)
			}
		} else {
			stuck = 0
		}
		last = r.RIP
	}
	switch reason {
	case kvmsys.KVM_EXIT_IO:
		port, v := p.ioPort()
		if port == pPort {
			return ""
		}
		if port == pVecPort {
			return fmt.Sprintf("it raised %s at ring 0", x86.VectorInfo(int(v)).Mnemonic)
		}
		return fmt.Sprintf("it wrote port %#x at rip %#x", port, r.RIP)
	case kvmsys.KVM_EXIT_INTERNAL_ERROR:
		if p.run.Internal().Suberror == kvmsys.KVM_INTERNAL_ERROR_EMULATION {
			return "KVM could not emulate it at ring 0"
		}
		return fmt.Sprintf("KVM internal error, suberror %d", p.run.Internal().Suberror)
	case kvmsys.KVM_EXIT_INTR:
		return "it did not finish within the probe's time limit"
	}
	return fmt.Sprintf("it ended with KVM exit reason %d at rip %#x", reason, r.RIP)
}
