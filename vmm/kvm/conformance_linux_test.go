//go:build linux && amd64

package kvm

import (
	"testing"

	"vmdap/vmm"
	"vmdap/vmm/vmmtest"
)

func TestConformance(t *testing.T) {
	vmmtest.RequireKVM(t)
	g := vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
	vmmtest.Conformance(t, g, func(t *testing.T, g *vmmtest.Guest) vmm.Target {
		m, err := New(Config{Image: g.Data, Memory: 64 << 20, Log: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		return m
	})
}
