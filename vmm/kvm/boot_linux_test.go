//go:build linux && amd64

package kvm

import (
	"context"
	"strings"
	"testing"
	"time"

	"vmdap/vmm"
	"vmdap/vmm/vmmtest"
)

func bootAndRun(t *testing.T, g *vmmtest.Guest, cmdline string) (vmm.Stop, string) {
	t.Helper()
	out := &syncBuffer{}
	m, err := New(Config{Image: g.Data, Memory: 64 << 20, VCPUs: 2, Cmdline: cmdline, Serial: out, Log: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Continue(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := m.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s, out.String()
}

func TestBootMultiboot(t *testing.T) {
	vmmtest.RequireKVM(t)
	for _, variant := range []string{"elf64", "elf32"} {
		var g *vmmtest.Guest
		if variant == "elf32" {
			g = vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
		} else {
			g = vmmtest.BuildGuest(t, "mb")
		}
		s, out := bootAndRun(t, g, "console=ttyS0 vmdap=yes")
		if s.Reason != vmm.ReasonExited || s.ExitCode != 0x10<<1|1 {
			t.Fatalf("%s: %v, output %q", variant, s, out)
		}
		if !strings.Contains(out, "magic=0x000000002badb002") || !strings.Contains(out, "cmdline=console=ttyS0 vmdap=yes") {
			t.Fatalf("%s: output %q", variant, out)
		}
	}
}

func TestBootPVH(t *testing.T) {
	vmmtest.RequireKVM(t)
	g := vmmtest.BuildGuest(t, "pvh")
	s, out := bootAndRun(t, g, "hello pvh")
	if s.Reason != vmm.ReasonExited || s.ExitCode != 0x20<<1|1 {
		t.Fatalf("%v, output %q", s, out)
	}
	if !strings.Contains(out, "pvh magic=0x00000000336ec578") || !strings.Contains(out, "cmdline=hello pvh") {
		t.Fatalf("output %q", out)
	}
}

func TestBadImages(t *testing.T) {
	vmmtest.RequireKVM(t)
	g := vmmtest.BuildGuest(t, "mech")
	for _, tc := range []struct {
		name string
		img  []byte
		mem  uint64
		cpus int
		want string
	}{
		{"empty", nil, 0, 0, "empty"},
		{"not ELF", []byte("#!/bin/sh\necho hi\n"), 0, 0, "not an ELF file"},
		{"truncated", g.Data[:len(g.Data)/2], 0, 0, "truncated"},
		{"stacks over the image", g.Data, 4 << 20, 48, "vCPU stacks"},
		{"RAM too small", g.Data, 1 << 20, 0, "out of range"},
		{"wrong arch", armELF(), 0, 0, "wrong architecture"},
	} {
		_, err := New(Config{Image: tc.img, Memory: tc.mem, VCPUs: tc.cpus, Log: testLogger()})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// armELF is a minimal ELF64 header for AArch64.
func armELF() []byte {
	b := make([]byte, 64)
	copy(b, "\x7fELF\x02\x01\x01")
	b[16] = 2    // ET_EXEC
	b[18] = 0xb7 // EM_AARCH64
	b[20] = 1
	b[52] = 64 // ehsize
	b[54] = 56 // phentsize
	b[58] = 64 // shentsize
	return b
}

func TestUARTInputAndUnknownPorts(t *testing.T) {
	vmmtest.RequireKVM(t)
	p := &ports{log: testLogger(), com1: newUART(nil, strings.NewReader("ok")), logged: map[uint16]bool{}}
	deadline := time.Now().Add(2 * time.Second)
	for !p.com1.dataReady() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	var b [1]byte
	p.in(portCOM1+5, b[:])
	if b[0]&lsrDR == 0 || b[0]&lsrTHRE == 0 {
		t.Fatalf("LSR = %#x, want data ready and transmitter empty", b[0])
	}
	p.in(portCOM1, b[:])
	if b[0] != 'o' {
		t.Fatalf("RBR = %q", b[0])
	}
	four := make([]byte, 4)
	p.in(0x1234, four)
	if string(four) != "\xff\xff\xff\xff" {
		t.Fatalf("unknown port read % x", four)
	}
	if req := p.out(portDebugExit, []byte{3}); req == nil || req.code != 7 {
		t.Fatalf("debug exit of 3: %+v", req)
	}
}

func TestLargeGuestIsLazy(t *testing.T) {
	vmmtest.RequireKVM(t)
	g := vmmtest.BuildGuest(t, "mech")
	m, err := New(Config{Image: g.Data, Memory: 16 << 30, Log: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// 16 GiB of guest RAM is reserved, not committed: the process's
	// resident set stays far below it.
	if rss := residentBytes(t); rss > 1<<30 {
		t.Fatalf("resident set %d MiB after creating a 16 GiB guest", rss>>20)
	}
}
