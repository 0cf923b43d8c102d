//go:build linux && amd64

package kvm

import (
	"fmt"
	"sort"

	"golang.org/x/sys/unix"

	"vmdap/vmm"
	"vmdap/vmm/kvm/internal/kvmsys"
)

const pageSize = 4096

// protection of one guest page, by reference count per reason.
type protection struct {
	writes int // write-trapped: page in a read-only memslot
	reads  int // read-trapped: page in no memslot at all
}

type slotKind uint8

const (
	slotNormal slotKind = iota
	slotReadOnly
	slotAbsent
)

type region struct {
	gpa, size uint64
	kind      slotKind
	slot      uint32
}

// memory is guest RAM: one anonymous shared mapping, reserved lazily
// (MAP_NORESERVE), presented to KVM as memslots. Page protection splits
// the memslots around protected pages: a write-trapped page sits in its own
// read-only memslot, a read-trapped page in none; each guest access to
// such a page becomes an MMIO exit that vmdap emulates.
type memory struct {
	vm       int
	ram      []byte
	size     uint64
	maxSlots int
	cur      []region
	freeIDs  []uint32
	nextID   uint32
	prot     map[uint64]*protection // by page frame number
}

func newMemory(vm int, size uint64) (*memory, error) {
	ram, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("mmap of %d MiB guest RAM: %w", size>>20, err)
	}
	m := &memory{vm: vm, ram: ram, size: size, prot: map[uint64]*protection{}}
	m.maxSlots = kvmsys.CheckExtension(vm, kvmsys.KVM_CAP_NR_MEMSLOTS)
	if m.maxSlots <= 0 {
		m.maxSlots = 32
	}
	if err := m.apply(); err != nil {
		unix.Munmap(ram)
		return nil, err
	}
	return m, nil
}

func (m *memory) close() {
	if m.ram != nil {
		unix.Munmap(m.ram)
		m.ram = nil
	}
}

// ReadAt reads raw guest-physical memory (io.ReaderAt, for page walks).
func (m *memory) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || uint64(off) >= m.size {
		return 0, &vmm.FaultError{Addr: uint64(off), Reason: "outside guest RAM"}
	}
	n := copy(p, m.ram[off:])
	if n < len(p) {
		return n, &vmm.FaultError{Addr: uint64(off) + uint64(n), Reason: "outside guest RAM"}
	}
	return n, nil
}

func (m *memory) protect(gfn uint64, write, read int) {
	p := m.prot[gfn]
	if p == nil {
		p = &protection{}
		m.prot[gfn] = p
	}
	p.writes += write
	p.reads += read
	if p.writes <= 0 && p.reads <= 0 {
		delete(m.prot, gfn)
	}
}

func (m *memory) kindOf(gfn uint64) slotKind {
	p := m.prot[gfn]
	switch {
	case p == nil:
		return slotNormal
	case p.reads > 0:
		return slotAbsent
	case p.writes > 0:
		return slotReadOnly
	}
	return slotNormal
}

// desired computes the memslot layout the protections call for.
func (m *memory) desired() []region {
	gfns := make([]uint64, 0, len(m.prot))
	for g := range m.prot {
		if g*pageSize < m.size {
			gfns = append(gfns, g)
		}
	}
	sort.Slice(gfns, func(i, j int) bool { return gfns[i] < gfns[j] })
	var out []region
	add := func(gpa, size uint64, k slotKind) {
		if size == 0 {
			return
		}
		if n := len(out); n > 0 && out[n-1].kind == k && out[n-1].gpa+out[n-1].size == gpa {
			out[n-1].size += size
			return
		}
		out = append(out, region{gpa: gpa, size: size, kind: k})
	}
	pos := uint64(0)
	for _, g := range gfns {
		gpa := g * pageSize
		add(pos, gpa-pos, slotNormal)
		add(gpa, pageSize, m.kindOf(g))
		pos = gpa + pageSize
	}
	add(pos, m.size-pos, slotNormal)
	return out
}

// apply brings KVM's memslots in line with the protections. The vCPUs must
// be stopped.
func (m *memory) apply() error {
	want := m.desired()
	same := func(a, b region) bool { return a.gpa == b.gpa && a.size == b.size && a.kind == b.kind }
	var keep []region
	// Delete slots that are not wanted any more.
	for _, c := range m.cur {
		found := false
		for _, w := range want {
			if same(c, w) {
				found = true
				break
			}
		}
		if found {
			keep = append(keep, c)
			continue
		}
		if c.kind != slotAbsent {
			r := kvmsys.UserspaceMemoryRegion{Slot: c.slot}
			if err := kvmsys.SetUserMemoryRegion(m.vm, &r); err != nil {
				return fmt.Errorf("deleting memslot %d at %#x: %w", c.slot, c.gpa, err)
			}
			m.freeIDs = append(m.freeIDs, c.slot)
		}
	}
	// Create the new ones.
	for _, w := range want {
		found := false
		for _, c := range keep {
			if same(c, w) {
				found = true
				break
			}
		}
		if found {
			continue
		}
		if w.kind != slotAbsent {
			id, err := m.allocID()
			if err != nil {
				return err
			}
			w.slot = id
			r := kvmsys.UserspaceMemoryRegion{
				Slot: id, GuestPhysAddr: w.gpa, MemorySize: w.size,
				UserspaceAddr: kvmsys.HostAddr(m.ram[w.gpa:]),
			}
			if w.kind == slotReadOnly {
				r.Flags = kvmsys.KVM_MEM_READONLY
			}
			if err := kvmsys.SetUserMemoryRegion(m.vm, &r); err != nil {
				return fmt.Errorf("creating memslot %d [%#x,%#x): %w", id, w.gpa, w.gpa+w.size, err)
			}
		}
		keep = append(keep, w)
	}
	sort.Slice(keep, func(i, j int) bool { return keep[i].gpa < keep[j].gpa })
	m.cur = keep
	return nil
}

func (m *memory) allocID() (uint32, error) {
	if n := len(m.freeIDs); n > 0 {
		id := m.freeIDs[n-1]
		m.freeIDs = m.freeIDs[:n-1]
		return id, nil
	}
	if int(m.nextID) >= m.maxSlots {
		return 0, fmt.Errorf("out of KVM memslots (%d): too many protected pages", m.maxSlots)
	}
	id := m.nextID
	m.nextID++
	return id, nil
}

// slotsFree estimates how many more protected pages the layout can take.
func (m *memory) slotsFree() int { return m.maxSlots - len(m.cur) - 2 }
