package vmmtest

import (
	"errors"
	"path/filepath"
	"testing"

	"vmdap/vmm/vmmtest/guests"
)

// Guest is a built test guest.
type Guest = guests.Guest

// Variants of guests.Build.
const (
	ELF64 = guests.ELF64
	ELF32 = guests.ELF32
)

// Sym returns a symbol's address or fails the test.
func Sym(t testing.TB, g *Guest, name string) uint64 {
	t.Helper()
	a, ok := g.Symbols[name]
	if !ok {
		t.Fatalf("guest %s has no symbol %q", g.Name, name)
	}
	return a
}

// BuildGuest builds testdata/guests/<name> (or fails the test).
func BuildGuest(t testing.TB, name string, variant ...guests.Variant) *Guest {
	t.Helper()
	root, err := guests.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	v := guests.ELF64
	if len(variant) > 0 {
		v = variant[0]
	}
	g, err := guests.Build(filepath.Join(root, "testdata", "guests", name), v)
	if err != nil {
		t.Fatalf("building guest %s: %v", name, err)
	}
	return g
}

// BuildExample builds examples/<name> (or fails the test).
func BuildExample(t testing.TB, name string) *Guest {
	t.Helper()
	root, err := guests.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	g, err := guests.Build(filepath.Join(root, "examples", name), guests.ELF64)
	if err != nil {
		t.Fatalf("building example %s: %v", name, err)
	}
	return g
}

// BuildCorpus builds testdata/guests/corpus the way its tag says (see
// guests.Corpus and guests.ClangCorpus), as an ELF64 file or, for QEMU's
// Multiboot loader, ELF32. A clang build skips the test where clang is
// not installed.
func BuildCorpus(t testing.TB, tag string, variant ...guests.Variant) *Guest {
	t.Helper()
	o, ok := guests.CorpusOptions(tag)
	if !ok {
		t.Fatalf("no corpus build %q", tag)
	}
	if len(variant) > 0 {
		o.Variant = variant[0]
	}
	root, err := guests.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	g, err := guests.BuildWith(filepath.Join(root, "testdata", "guests", "corpus"), o)
	if errors.Is(err, guests.ErrNoClang) {
		t.Skipf("corpus %s: %v", tag, err)
	}
	if err != nil {
		t.Fatalf("building corpus %s: %v", tag, err)
	}
	return g
}

// BuildRustGuest builds testdata/guests/rust, or skips the test when
// rustc is missing.
func BuildRustGuest(t testing.TB, variant ...guests.Variant) *Guest {
	t.Helper()
	root, err := guests.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	v := guests.ELF64
	if len(variant) > 0 {
		v = variant[0]
	}
	g, err := guests.BuildRust(filepath.Join(root, "testdata", "guests", "rust"), v)
	if errors.Is(err, guests.ErrNoRustc) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatalf("building the Rust guest: %v", err)
	}
	return g
}
