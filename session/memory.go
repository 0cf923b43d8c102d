package session

import (
	"errors"
	"fmt"

	"vmdap/vmm"
)

const pageSize = 4096

// ReadMemory reads guest-virtual memory as the current vCPU sees it. It
// returns the readable prefix and how many bytes after it are unreadable
// (up to the next readable page or the end of the request).
func (s *Session) ReadMemory(addr uint64, count int) (data []byte, unreadable int, err error) {
	if count < 0 || count > 16<<20 {
		return nil, 0, fmt.Errorf("count %d out of range", count)
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
		var err error
		n, err = s.t.WriteMemory(s.curVCPU, data, addr)
		s.frames = map[int][]Frame{}
		if err != nil && (!allowPartial || n == 0) {
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
