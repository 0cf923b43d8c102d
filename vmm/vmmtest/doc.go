// Package vmmtest holds what vmdap's backend tests share: RequireKVM and
// RequireQEMU (skip with a clear reason when the host lacks them), and
// BuildGuest, which compiles a guest under testdata/guests/<name> from its
// C and assembly sources with gcc and binutils, caching the result by the
// hash of its sources and the compiler's version (no binaries are
// committed).
package vmmtest
