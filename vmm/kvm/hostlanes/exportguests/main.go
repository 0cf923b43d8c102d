// Command exportguests builds every test and example guest into one
// folder (the nested-KVM lanes copy it into their initramfs, where there
// is no compiler).
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"vmdap/vmm/vmmtest/guests"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: exportguests DIR")
		os.Exit(2)
	}
	out := os.Args[1]
	root, err := guests.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.MkdirAll(out, 0o755)
	type job struct {
		dir string
		v   guests.Variant
	}
	var jobs []job
	ents, _ := os.ReadDir(filepath.Join(root, "testdata", "guests"))
	for _, e := range ents {
		dir := filepath.Join(root, "testdata", "guests", e.Name())
		if rs, _ := filepath.Glob(filepath.Join(dir, "*.rs")); len(rs) > 0 {
			continue // a Rust guest: built by rustc in its own tests, not run in the lanes
		}
		if e.IsDir() && e.Name() != "common" {
			jobs = append(jobs, job{dir, guests.ELF64})
		}
	}
	jobs = append(jobs, job{filepath.Join(root, "testdata", "guests", "mb"), guests.ELF32},
		job{filepath.Join(root, "examples", "kernel"), guests.ELF64})
	for _, j := range jobs {
		g, err := guests.Build(j.dir, j.v)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		dst := filepath.Join(out, guests.PrebuiltName(filepath.Base(j.dir), j.v))
		if err := os.WriteFile(dst, g.Data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(dst)
	}
}
