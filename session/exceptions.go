package session

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"vmdap/vmm"
	"vmdap/x86"
	"vmdap/x86/disasm"
)

// ExceptionFilter is one exception breakpoint filter.
type ExceptionFilter struct {
	ID          string
	Label       string
	Description string
	Vector      int      // -1 for the triple fault
	Funcs       []string // a Linux filter's kernel function, the first the kernel has (LinuxExceptionFilters)
	Default     bool
}

// ExceptionFilters lists the guest exceptions a user can break on. A
// vector's filter is a breakpoint on the guest's IDT handler for it; the
// triple fault is the shutdown stop.
var ExceptionFilters = []ExceptionFilter{
	{ID: "DE", Label: "#DE Divide Error", Description: "break at the guest's divide-error handler (vector 0)", Vector: x86.VecDE},
	{ID: "UD", Label: "#UD Invalid Opcode", Description: "break at the guest's invalid-opcode handler (vector 6)", Vector: x86.VecUD},
	{ID: "GP", Label: "#GP General Protection", Description: "break at the guest's general-protection handler (vector 13)", Vector: x86.VecGP},
	{ID: "PF", Label: "#PF Page Fault", Description: "break at the guest's page-fault handler (vector 14); the stop shows CR2 and the error code", Vector: x86.VecPF},
	{ID: "DF", Label: "#DF Double Fault", Description: "break at the guest's double-fault handler (vector 8)", Vector: x86.VecDF, Default: true},
	{ID: "triple", Label: "Triple fault", Description: "stop when the guest triple-faults (the CPU shuts down)", Vector: -1, Default: true},
}

type exceptionFilters struct {
	on       map[int]bool // vectors
	triple   bool
	handlers map[uint64][]int
	placed   []physKey
	lidt     []physKey // internal breakpoints after lidt instructions
	scanned  bool
}

func newExceptionFilters() *exceptionFilters {
	return &exceptionFilters{on: map[int]bool{}, handlers: map[uint64][]int{}, triple: true}
}

// ExceptionInfo describes the exception of the last exception stop.
type ExceptionInfo struct {
	ID          string
	Description string
	Details     string
}

// SetExceptionFilters enables exactly the exception filters named by ids
// (the rest are turned off). It answers per id: nil when the filter is
// on, else why not (an unknown id); the known ones are set either way.
func (s *Session) SetExceptionFilters(ids []string) ([]error, error) {
	res := make([]error, len(ids))
	err := s.halted(func() error {
		e := s.bps.exc
		e.on = map[int]bool{}
		e.triple = false
		var kern []string
		for i, id := range ids {
			if _, ok := linuxFilter(id); ok {
				if !s.isLinux() {
					res[i] = fmt.Errorf("%q is for a Linux kernel image, and this image is not one", id)
				} else if !slices.Contains(kern, id) {
					kern = append(kern, id)
				}
				continue
			}
			res[i] = fmt.Errorf("unknown exception filter %q", id)
			for _, f := range ExceptionFilters {
				if f.ID != id {
					continue
				}
				res[i] = nil
				if f.Vector < 0 {
					e.triple = true
				} else {
					e.on[f.Vector] = true
				}
			}
		}
		if len(e.on) > 0 && !e.scanned {
			s.scanLIDT()
		}
		if s.isLinux() {
			why := s.bps.setKernelFilters(kern)
			for i, id := range ids {
				if err := why[id]; err != nil {
					res[i] = err
				}
			}
		}
		s.refreshExceptionBPs()
		return nil
	})
	return res, err
}

// refreshExceptionBPs (re)places breakpoints on the handlers of the
// enabled vectors, read from vCPU 0's IDT (target stopped, session locked).
func (s *Session) refreshExceptionBPs() {
	e := s.bps.exc
	want := map[uint64][]int{}
	if len(e.on) > 0 {
		sr, err := s.t.SRegs(0)
		if err == nil && sr.CR0&x86.CR0PE != 0 && sr.IDT.Limit > 0 {
			long := sr.EFER&x86.EFERLMA != 0
			gate := uint64(8)
			if long {
				gate = 16
			}
			for vec := range e.on {
				if uint64(vec+1)*gate-1 > uint64(sr.IDT.Limit) {
					continue
				}
				b := make([]byte, gate)
				if n, _ := s.t.ReadMemory(0, b, sr.IDT.Base+uint64(vec)*gate); n < len(b) {
					continue
				}
				if b[5]&0x80 == 0 {
					continue
				}
				off := uint64(binary.LittleEndian.Uint16(b[0:])) | uint64(binary.LittleEndian.Uint16(b[6:]))<<16
				if long {
					off |= uint64(binary.LittleEndian.Uint32(b[8:])) << 32
				}
				want[off] = append(want[off], vec)
			}
		}
	}
	same := len(want) == len(e.handlers)
	for a := range want {
		if _, ok := e.handlers[a]; !ok {
			same = false
		}
	}
	if same {
		e.handlers = want
		return
	}
	for _, k := range e.placed {
		s.bps.remove(k, exceptionLet)
	}
	e.placed = nil
	for a := range want {
		hw, err := s.bps.useHW("")
		if err != nil {
			continue
		}
		k := physKey{a, hw}
		if err := s.bps.insert(k, exceptionLet); err == nil {
			e.placed = append(e.placed, k)
		}
	}
	e.handlers = want
}

// maxLIDTScan bounds how much code scanLIDT reads in full.
const maxLIDTScan = 1 << 20

// scanLIDT puts internal breakpoints after every lidt instruction in the
// image's functions, so handlers are found as soon as the guest loads its
// IDT.
func (s *Session) scanLIDT() {
	e := s.bps.exc
	e.scanned = true
	if s.sym == nil {
		return
	}
	mode := x86.Mode(64)
	if sr, err := s.t.SRegs(0); err == nil {
		mode = x86.DecodeMode(sr)
	}
	funcs := s.sym.Funcs()
	var total uint64
	for _, fn := range funcs {
		total += fn.High - fn.Low
	}
	for _, fn := range funcs {
		size := fn.High - fn.Low
		if size == 0 || size > 1<<20 {
			continue
		}
		// A large image (a Linux kernel: 20 MB of text, read through a
		// GDB stub at a few MB/s) is scanned only where IDTs are loaded
		// by name; handlers are also found from IDTR at every stop.
		if total > maxLIDTScan && !strings.Contains(strings.ToLower(fn.Name), "idt") {
			continue
		}
		code := make([]byte, size)
		n, _ := s.t.ReadMemory(0, code, fn.Low)
		code = code[:n]
		for off := 0; off < len(code); {
			in, err := disasm.Decode(code[off:], mode, fn.Low+uint64(off))
			if err != nil {
				off++
				continue
			}
			if in.Kind == disasm.KindLIDT {
				hw, err := s.bps.useHW("")
				if err == nil {
					k := physKey{in.Next(), hw}
					if s.bps.insert(k, lidtLet) == nil {
						e.lidt = append(e.lidt, k)
					}
				}
			}
			off += in.Len
		}
	}
}

func (e *exceptionFilters) isLIDTStop(addr uint64) bool {
	for _, k := range e.lidt {
		if k.addr == addr {
			return true
		}
	}
	return false
}

// exceptionStop describes a stop at an exception handler.
func (s *Session) exceptionStop(st vmm.Stop) (*Stopped, bool) {
	vecs, ok := s.bps.exc.handlers[st.PC]
	if !ok {
		return nil, false
	}
	vec := vecs[0]
	for _, v := range vecs {
		if s.bps.exc.on[v] {
			vec = v
			break
		}
	}
	info := x86.VectorInfo(vec)
	r, _ := s.t.Regs(st.VCPU)
	sr, _ := s.t.SRegs(st.VCPU)
	var frame [3]uint64
	var b [24]byte
	s.t.ReadMemory(st.VCPU, b[:], r.RSP)
	for i := range frame {
		frame[i] = binary.LittleEndian.Uint64(b[i*8:])
	}
	desc := fmt.Sprintf("%s %s", info.Mnemonic, info.Name)
	faultRIP := frame[0]
	if info.ErrorCode {
		desc += fmt.Sprintf(", error code %#x", frame[0])
		faultRIP = frame[1]
		if vec == x86.VecPF {
			desc += " (" + x86.PageFaultReason(frame[0]) + ")"
		}
	}
	if vec == x86.VecPF {
		desc += fmt.Sprintf(", CR2 %#x", sr.CR2)
	}
	desc += fmt.Sprintf(", raised at %s", s.where(faultRIP))
	s.excInfo = &ExceptionInfo{ID: info.Mnemonic, Description: desc,
		Details: fmt.Sprintf("vector %d; handler %s", vec, s.symbolize(st.PC))}
	return &Stopped{Reason: StopException, Description: desc, Text: info.Mnemonic}, true
}

// ExceptionInfo returns details of the last exception stop.
func (s *Session) ExceptionInfo() (ExceptionInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.excInfo == nil {
		return ExceptionInfo{}, false
	}
	return *s.excInfo, true
}
