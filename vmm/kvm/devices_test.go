package kvm

import (
	"io"
	"slices"
	"testing"
	"time"
)

// TestUARTInterrupts: COM1 raises its line as a 16550 does, so that a
// Linux tty (which writes from the transmit interrupt) makes progress:
// "transmitter empty" when enabled and after each byte, cleared by the
// IIR read that reports it; "data received" while a byte waits; nothing
// while the causes are masked.
func TestUARTInterrupts(t *testing.T) {
	in, feed := io.Pipe()
	var levels []bool
	u := newUART(io.Discard, in)
	u.mu.Lock()
	u.irq = func(l bool) { levels = append(levels, l) }
	u.mu.Unlock()
	step := func(what string, f func(), want ...bool) {
		t.Helper()
		u.mu.Lock()
		levels = nil
		u.mu.Unlock()
		f()
		u.mu.Lock()
		got := slices.Clone(levels)
		u.mu.Unlock()
		if !slices.Equal(got, want) {
			t.Fatalf("%s: line went %v, want %v", what, got, want)
		}
	}
	iir := func(want byte) {
		t.Helper()
		if got := u.read(uartIIR); got != want {
			t.Fatalf("IIR = %#x, want %#x", got, want)
		}
	}
	step("nothing enabled, a byte sent", func() { u.write(uartRBR, 'a') })
	iir(iirNone)
	step("transmit interrupt enabled", func() { u.write(uartIER, ierTHRI) }, true)
	step("IIR read", func() { iir(iirTHRI) }, false)
	iir(iirNone)
	step("a byte sent", func() { u.write(uartRBR, 'b') }, true)
	step("transmit interrupt disabled", func() { u.write(uartIER, 0) }, false)
	step("receive interrupt enabled, nothing received", func() { u.write(uartIER, ierRDI) })
	step("a byte received", func() {
		go feed.Write([]byte{'x'})
		deadline := time.Now().Add(2 * time.Second)
		for {
			u.mu.Lock()
			l := u.level
			u.mu.Unlock()
			if l || time.Now().After(deadline) {
				return
			}
			time.Sleep(time.Millisecond) // the reader goroutine delivers it
		}
	}, true)
	iir(iirRDI)
	step("the byte read", func() {
		if b := u.read(uartRBR); b != 'x' {
			t.Fatalf("RBR = %q", b)
		}
	}, false)
	iir(iirNone)
	feed.Close()
}
