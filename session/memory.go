package session

import (
	"errors"
	"fmt"

	"vmdap/vmm"
)

const pageSize = 4096

// MaxReadMemory bounds one read. Its response in base64 (4/3 of it) stays
// well under the 4 MiB message that go-dap based clients accept (a
// larger one ends their connection), and a read of it over QEMU's GDB
// stub takes tens of milliseconds; clients read memory by pages.
const MaxReadMemory = 1 << 20

// ReadMemory reads guest-virtual memory as the current vCPU sees it. It
// returns the readable prefix and how many bytes after it are unreadable
// (up to the next readable page or the end of the request). A count over
// MaxReadMemory is refused: a shorter answer would tell the client that
// readable memory ends there.
func (s *Session) ReadMemory(addr uint64, count int) (data []byte, unreadable int, err error) {
	if count < 0 {
		return nil, 0, fmt.Errorf("count %d out of range", count)
	}
	if count > MaxReadMemory {
		return nil, 0, fmt.Errorf("count %d is too large: at most %d bytes (1 MiB) in one read; read in pieces", count, MaxReadMemory)
	}
	err = s.stopped(func() error {
		v := s.curVCPU
		// Nothing is above the top of the address space: the bytes past
		// it are unreadable, not the bottom's.
		fits := count
		if top := -addr; addr != 0 && uint64(count) > top {
			fits = int(top)
			unreadable = count - fits
		}
		buf := make([]byte, fits)
		n, rerr := s.t.ReadMemory(v, buf, addr)
		data = buf[:n]
		if n == fits {
			return nil
		}
		var fe *vmm.FaultError
		if rerr != nil && !errors.As(rerr, &fe) {
			return rerr
		}
		// Count unreadable bytes page by page.
		pos := addr + uint64(n)
		end := addr + uint64(fits) // 0: the top of the address space
		for pos < end || end == 0 && pos != 0 {
			next := (pos | (pageSize - 1)) + 1
			if end != 0 && next > end || next < pos {
				next = end
			}
			var b [1]byte
			if m, _ := s.t.ReadMemory(v, b[:], pos); m == 1 {
				break
			}
			unreadable += int(next - pos)
			pos = next
		}
		return nil
	})
	return data, unreadable, err
}

// WriteMemory writes guest-virtual memory; with allowPartial a fault ends
// the write early instead of failing.
func (s *Session) WriteMemory(addr uint64, data []byte, allowPartial bool) (int, error) {
	var n int
	err := s.stopped(func() error {
		var orig []byte
		if !allowPartial && len(data) > 0 {
			// All or nothing: the range is read first, and a write that
			// fails part-way is undone with what was there.
			orig = make([]byte, len(data))
			if got, err := s.t.ReadMemory(s.curVCPU, orig, addr); got < len(data) {
				if err == nil {
					err = errors.New("not mapped")
				}
				return fmt.Errorf("cannot write %d bytes at %#x: %#x is not writable (%v); nothing was written", len(data), addr, addr+uint64(got), err)
			}
		}
		var err error
		n, err = s.t.WriteMemory(s.curVCPU, data, addr)
		s.frames = map[int][]Frame{}
		switch {
		case err == nil:
		case !allowPartial && n > 0:
			if back, berr := s.t.WriteMemory(s.curVCPU, orig[:n], addr); back == n && berr == nil {
				n = 0
			}
			return err
		case !allowPartial || n == 0:
			return err
		}
		return nil
	})
	if n > 0 {
		s.emit(MemoryChanged{Addr: addr, Count: n})
		s.emit(Invalidated{})
	}
	return n, err
}
