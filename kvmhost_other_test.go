//go:build !linux

package main

import "testing"

// requireGuestSyscalls: vmdap's VMM needs Linux (RequireKVM skips first).
func requireGuestSyscalls(t *testing.T, why string) { t.Helper() }

// requireRing0: vmdap's VMM needs Linux (RequireKVM skips first).
func requireRing0(t *testing.T, insn, why string) { t.Helper() }

func requireFastRing0(t *testing.T, why string) { t.Helper() }
