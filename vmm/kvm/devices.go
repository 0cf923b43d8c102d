package kvm

import (
	"io"
	"sync"

	"github.com/sirupsen/logrus"

	"vmdap/vmm"
	"vmdap/vmm/kvm/boot"
)

// Port numbers of the emulated devices.
const (
	portCOM1      = 0x3f8
	portDebugExit = 0xf4 // QEMU isa-debug-exit: a write of V exits with (V<<1)|1
	portDebugCon  = 0xe9 // Bochs/QEMU debug console
)

// uart is a 16550A at COM1: transmit goes to out at once, the line status
// always says the transmitter is empty, and received bytes come from in.
// With an interrupt controller (irq set) it raises IRQ 4 as a 16550 does,
// for "transmitter empty" and "data received" when the guest enables
// them: a Linux tty writes through the transmit interrupt (its console
// polls), so user space's output needs it.
type uart struct {
	out io.Writer
	rx  chan byte // received bytes, from the goroutine reading in
	// irq sets the level of the UART's interrupt line (nil: none).
	irq func(level bool)

	// mu guards the registers below and orders the bytes written to out:
	// each vCPU thread emulates its own port accesses.
	mu     sync.Mutex
	ier    byte
	lcr    byte
	mcr    byte
	scr    byte
	dll    byte
	dlm    byte
	peeked int // -1 when no byte is waiting
	// thri: a "transmitter holding register empty" interrupt is pending
	// (set when it empties or the interrupt is enabled, cleared by a read
	// of IIR that reports it); level: the line as last set.
	thri, level bool
}

func newUART(out io.Writer, in io.Reader) *uart {
	u := &uart{out: out, rx: make(chan byte, 4096), peeked: -1}
	if in != nil {
		go func() {
			buf := make([]byte, 256)
			for {
				n, err := in.Read(buf)
				for _, b := range buf[:n] {
					u.rx <- b
				}
				if n > 0 {
					u.mu.Lock()
					u.update()
					u.mu.Unlock()
				}
				if err != nil {
					return
				}
			}
		}()
	}
	return u
}

// 16550 register offsets and bits.
const (
	uartRBR = 0 // receive buffer / transmit holding / DLL
	uartIER = 1 // interrupt enable / DLM
	uartIIR = 2
	uartLCR = 3
	uartMCR = 4
	uartLSR = 5
	uartMSR = 6
	uartSCR = 7

	ierRDI  = 0x01 // received data available
	ierTHRI = 0x02 // transmitter holding register empty
	iirNone = 0xc1 // FIFOs enabled, no interrupt pending
	iirTHRI = 0xc2
	iirRDI  = 0xc4

	lsrDR   = 0x01
	lsrTHRE = 0x20
	lsrTEMT = 0x40
	lcrDLAB = 0x80
)

func (u *uart) dataReady() bool {
	if u.peeked >= 0 {
		return true
	}
	select {
	case b := <-u.rx:
		u.peeked = int(b)
		return true
	default:
		return false
	}
}

// update sets the interrupt line from the pending, enabled causes (mu
// held).
func (u *uart) update() {
	if u.irq == nil {
		return
	}
	l := u.ier&ierRDI != 0 && u.dataReady() || u.ier&ierTHRI != 0 && u.thri
	if l != u.level {
		u.level = l
		u.irq(l)
	}
}

func (u *uart) read(off uint16) byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch off {
	case uartRBR:
		if u.lcr&lcrDLAB != 0 {
			return u.dll
		}
		if u.dataReady() {
			b := byte(u.peeked)
			u.peeked = -1
			u.update()
			return b
		}
		return 0
	case uartIER:
		if u.lcr&lcrDLAB != 0 {
			return u.dlm
		}
		return u.ier
	case uartIIR:
		switch {
		case u.ier&ierRDI != 0 && u.dataReady():
			return iirRDI
		case u.ier&ierTHRI != 0 && u.thri:
			u.thri = false // reported: cleared
			u.update()
			return iirTHRI
		}
		return iirNone
	case uartLCR:
		return u.lcr
	case uartMCR:
		return u.mcr
	case uartLSR:
		v := byte(lsrTHRE | lsrTEMT)
		if u.dataReady() {
			v |= lsrDR
		}
		return v
	case uartMSR:
		return 0xb0 // DCD, DSR, CTS
	case uartSCR:
		return u.scr
	}
	return 0xff
}

func (u *uart) write(off uint16, v byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch off {
	case uartRBR:
		if u.lcr&lcrDLAB != 0 {
			u.dll = v
			return
		}
		if u.mcr&0x10 != 0 { // loopback
			select {
			case u.rx <- v:
			default:
			}
			u.update()
			return
		}
		if u.out != nil {
			_, _ = u.out.Write([]byte{v})
		}
		u.thri = true // sent at once: empty again
		u.update()
	case uartIER:
		if u.lcr&lcrDLAB != 0 {
			u.dlm = v
			return
		}
		if v&ierTHRI != 0 && u.ier&ierTHRI == 0 {
			u.thri = true // enabled while empty: pending at once
		}
		u.ier = v & 0x0f
		u.update()
	case uartLCR:
		u.lcr = v
	case uartMCR:
		u.mcr = v
	case uartSCR:
		u.scr = v
	}
}

// ports dispatches port I/O to the devices.
type ports struct {
	log    logrus.FieldLogger
	com1   *uart
	con    io.Writer
	mu     sync.Mutex      // guards logged (vCPU threads emulate ports side by side)
	logged map[uint16]bool // ports (and 0xffff: MMIO) already said to be unemulated
}

// exitRequest is returned by out when the guest asked to end: through the
// debug-exit port (code), by powering off through ACPI (code 0), or by
// asking for a reset through ACPI (reset).
type exitRequest struct {
	code   int
	reset  bool
	detail string
}

// stop is the vCPU stop the request ends the run with.
func (r *exitRequest) stop(pc uint64) vmm.Stop {
	if r.reset {
		return vmm.Stop{Reason: vmm.ReasonShutdown, PC: pc, Detail: r.detail}
	}
	return vmm.Stop{Reason: vmm.ReasonExited, ExitCode: r.code, PC: pc, Detail: r.detail}
}

// in fills data (size bytes) for a read of port.
func (p *ports) in(port uint16, data []byte) {
	switch {
	case port >= portCOM1 && port < portCOM1+8:
		data[0] = p.com1.read(port - portCOM1)
		for i := 1; i < len(data); i++ {
			data[i] = 0
		}
		return
	case port == portDebugCon:
		data[0] = portDebugCon // Bochs' "debug console present" answer
		return
	case port == boot.SleepControlPort || port == boot.SleepStatusPort || port == boot.ResetPort:
		clear(data) // not sleeping, no wake status
		return
	}
	p.unknown(port, "read")
	for i := range data {
		data[i] = 0xff
	}
}

// out handles a write; it returns an exit request for the debug-exit port.
func (p *ports) out(port uint16, data []byte) *exitRequest {
	switch {
	case port >= portCOM1 && port < portCOM1+8:
		p.com1.write(port-portCOM1, data[0])
		return nil
	case port == portDebugCon:
		if p.con != nil {
			_, _ = p.con.Write(data[:1])
		}
		return nil
	case port == portDebugExit:
		var v uint64
		for i := len(data) - 1; i >= 0; i-- {
			v = v<<8 | uint64(data[i])
		}
		return &exitRequest{code: int((v<<1)|1) & 0xff}
	case port == boot.SleepControlPort:
		// ACPI hardware-reduced sleep control (FADT SLEEP_CONTROL_REG):
		// SLP_EN with SLP_TYP 5 (\_S5) is soft off.
		v := data[0]
		if v&boot.SleepEnable != 0 && v>>2&7 == boot.SleepTypeS5 {
			return &exitRequest{code: 0, detail: "the guest powered off (ACPI S5)"}
		}
		return nil
	case port == boot.SleepStatusPort:
		return nil
	case port == boot.ResetPort:
		if data[0] == boot.ResetValue {
			return &exitRequest{reset: true, detail: "the guest asked for a reset (ACPI reset register); vmdap does not restart guests"}
		}
		return nil
	}
	p.unknown(port, "write")
	return nil
}

func (p *ports) unknown(port uint16, what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.logged[port] {
		return
	}
	p.logged[port] = true
	p.log.WithField("port", port).Infof("guest %s of unemulated I/O port %#x (reads give 0xff, writes are dropped; logged once)", what, port)
}

func (p *ports) unknownMMIO(addr uint64, write bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := uint16(0xffff)
	if p.logged[key] {
		return
	}
	p.logged[key] = true
	what := "read"
	if write {
		what = "write"
	}
	p.log.WithField("addr", addr).Infof("guest %s of %#x, which is neither RAM nor a device (reads give 0xff; logged once)", what, addr)
}
