//go:build !linux

package main

import "testing"

// requireGuestSyscalls: vmdap's VMM needs Linux (RequireKVM skips first).
func requireGuestSyscalls(t *testing.T, why string) { t.Helper() }
