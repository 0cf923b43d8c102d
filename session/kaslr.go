package session

import (
	"bytes"
	"fmt"
	"time"

	"vmdap/x86"
)

// KASLR: a Linux kernel that relocated itself at boot runs at its link
// addresses plus a slide (a multiple of 2 MiB, below 1 GiB on x86-64).
// At user-visible stops in the kernel's half of the address space, until
// it is known, vmdap compares the guest's memory with the image's
// linux_banner at each candidate slide; the one that matches moves the
// symbols, re-places the breakpoints resolved from them, and is said in
// the debug console. Once found it is checked again at each such stop
// (one read): a guest that rebooted (panic=N, a reset through an attached
// stub) runs at another slide, and the search starts over. A
// kernelOffset setting forces a value instead.

const (
	kaslrAlign    = 2 << 20
	kaslrMax      = 1 << 30
	kaslrMaxTries = 32 // stops at which the search may run before giving up
	bannerProbe   = 48 // bytes of linux_banner compared
)

type kaslrState struct {
	done   bool // the slide is known (or forced, or not a relocatable kernel)
	verify bool // found by the search: checked again at each stop
	tries  int  // stops at which the search found nothing
}

// kernelHalf is where an x86-64 kernel's addresses begin.
const kernelHalf = 0xffff800000000000

// forceSlide applies a kernelOffset setting.
func (s *Session) forceSlide(off uint64) {
	s.kaslr.done = true
	if s.sym == nil || off == s.sym.Slide() {
		return
	}
	s.sym.SetSlide(off)
	s.emit(Output{Kind: OutNote, Text: fmt.Sprintf("vmdap: symbols moved by kernelOffset %#x\n", off)})
}

// checkSlide looks for a KASLR slide at a stop of vCPU v (or of another
// vCPU, stopped too, when v is not in the kernel: a pause often finds one
// in user space). Target stopped, Session.mu held.
func (s *Session) checkSlide(v int) {
	if s.sym == nil || s.kaslr.done && !s.kaslr.verify || s.kaslr.tries >= kaslrMaxTries {
		return
	}
	banner, ok := s.sym.LinkSymbol("linux_banner")
	if !ok || banner < kernelHalf {
		s.kaslr.done = true // not a relocatable x86-64 kernel
		return
	}
	want, ok := s.sym.ImageBytes(banner, bannerProbe)
	if !ok {
		s.kaslr.done = true
		return
	}
	v, ok = s.inKernelHalf(v)
	if !ok {
		return
	}
	at := func(addr uint64) bool {
		got := make([]byte, bannerProbe)
		n, err := s.t.ReadMemory(v, got, addr)
		return err == nil && n == bannerProbe && bytes.Equal(got, want)
	}
	cur := s.sym.Slide()
	if at(banner + cur) {
		first := !s.kaslr.done
		s.kaslr.done, s.kaslr.verify = true, true
		if first {
			s.bps.renote() // their KASLR caveat no longer holds
		}
		return
	}
	// Not where it was found: a reboot, or a stop whose page tables do
	// not map it (the entry code's, with page-table isolation). The
	// slide stays until the search finds another.
	again := s.kaslr.done
	if !again {
		s.kaslr.tries++
	}
	for off := uint64(0); off < kaslrMax; off += kaslrAlign {
		if off == cur || !at(banner+off) {
			continue
		}
		s.kaslr.done, s.kaslr.verify = true, true
		s.kaslr.tries = 0
		if again {
			s.emit(Output{Kind: OutNote, Text: fmt.Sprintf("vmdap: the kernel's linux_banner is no longer at %#x (the guest rebooted?)\n", banner+cur)})
		}
		s.sym.SetSlide(off)
		s.frames = map[int][]Frame{}
		s.bps.reresolve()
		s.linuxSlid()
		s.emit(Output{Kind: OutNote, Text: fmt.Sprintf("vmdap: the kernel runs relocated (KASLR) by %#x from its link addresses "+
			"(linux_banner found at %#x): symbols, breakpoints and frames follow it; set kernelOffset to force a value\n", off, banner+off)})
		return
	}
	if !again && s.kaslr.tries == kaslrMaxTries {
		s.bps.renote() // no longer looked for
		s.emit(Output{Kind: OutImportant, Text: "vmdap: the kernel's linux_banner is not where its symbols say, nor at any KASLR slide: " +
			"symbols may be wrong (is the image the running kernel? set kernelOffset if it was relocated)\n"})
	}
}

// slidePoll is how often a running kernel whose slide is not known yet
// is halted for a look (a few milliseconds each).
const slidePoll = 300 * time.Millisecond

// slideWanted says whether the image is a relocatable kernel whose slide
// is not known yet. Session.mu held.
func (s *Session) slideWanted() bool {
	if s.sym == nil || s.kaslr.done || s.kaslr.tries >= kaslrMaxTries {
		return false
	}
	banner, ok := s.sym.LinkSymbol("linux_banner")
	return ok && banner >= kernelHalf
}

// watchSlide looks for the slide while the guest runs, until it is known:
// attached at reset, a kernel may load a module, or reach a breakpoint
// set by name, long before anything stops it in the kernel, and both
// wait at addresses the slide moves. So the running guest is halted for
// a look every slidePoll (checkSlide, which needs a vCPU in the kernel's
// half), and the breakpoints and the module hooks move as soon as the
// slide is found. It ends with the session.
func (s *Session) watchSlide() {
	t := time.NewTicker(slidePoll)
	defer t.Stop()
	for {
		select {
		case <-s.life.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		want, running := s.slideWanted(), s.state == StateRunning
		s.mu.Unlock()
		if !want {
			return
		}
		if running {
			_ = s.halted(func() error { s.checkSlide(s.curVCPU); return nil })
		}
	}
}

// inKernelHalf returns v, else the first other vCPU, that runs where the
// kernel's mapping can exist: in long mode with paging, in the upper half.
func (s *Session) inKernelHalf(v int) (int, bool) {
	in := func(c int) bool {
		r, err := s.t.Regs(c)
		sr, err2 := s.t.SRegs(c)
		return err == nil && err2 == nil && x86.DecodeMode(sr) == 64 && r.RIP >= 0xffff800000000000
	}
	if in(v) {
		return v, true
	}
	for c := 0; c < s.t.VCPUs(); c++ {
		if c != v && in(c) {
			return c, true
		}
	}
	return v, false
}

// renote settles again the placed breakpoints' messages, and reports
// those that changed.
func (b *bpTable) renote() {
	for _, l := range b.all() {
		if l.info.State != BPPlaced || l.exc != "" {
			continue
		}
		was := l.info.Message
		if b.settle(l, BPPlaced, ""); l.info.Message != was {
			b.changed(l)
		}
	}
}

// reresolve resolves the source and function breakpoints from the
// symbols again (after they moved) and places them, reporting each.
func (b *bpTable) reresolve() {
	for _, ls := range b.source {
		for _, l := range ls {
			b.unplace(l)
			l.addrs = nil
			l.info.State, l.info.Message = BPPlaced, ""
			b.resolveSource(l)
			if len(l.addrs) > 0 {
				b.place(l)
			}
			b.changed(l)
		}
	}
	for _, l := range b.funcs {
		b.unplace(l)
		addrs, err := b.s.functionAddrs(l.fn)
		if err != nil {
			b.unresolvedFunc(l, err) // pending for a module that may have it, as when it was set
		} else {
			l.addrs, l.note = addrs, locations(addrs)
			b.place(l)
		}
		b.changed(l)
	}
	for _, l := range b.kern {
		b.unplace(l)
		if l.addrs = b.s.entryAddrs(l.fn); len(l.addrs) > 0 {
			b.place(l)
		}
	}
}
