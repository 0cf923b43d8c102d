package session

import (
	"debug/dwarf"
	"debug/elf"
	"os"
	"path"
	"path/filepath"
	"testing"

	"vmdap/vmm/vmmtest"
)

// TestRelativeCompDirFromBaseDir: Debian's kernel is compiled in a
// relative directory (debian/build/build_amd64_none_cloud-amd64), so its
// sources are relative paths no editor can open; as gdb finds them from
// its working directory, they are found from BaseDir (the adapter's
// working directory, the workspace folder in VS Code): start_kernel's
// line is in BaseDir/<its unit's name>, the name read with Go's
// debug/dwarf. A sourceMap that covers the directory wins.
func TestRelativeCompDirFromBaseDir(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	f, err := elf.Open(k.Vmlinux)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	var pc uint64
	for _, s := range syms {
		if s.Name == "start_kernel" && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			pc = s.Value
		}
	}
	d, err := f.DWARF()
	if err != nil {
		t.Fatal(err)
	}
	cu, err := d.Reader().SeekPC(pc)
	if err != nil {
		t.Fatal(err)
	}
	name, _ := cu.Val(dwarf.AttrName).(string)
	dir, _ := cu.Val(dwarf.AttrCompDir).(string)
	if name == "" || path.IsAbs(name) || dir == "" || path.IsAbs(dir) {
		t.Skipf("start_kernel's unit is %q in %q: not a relative compile directory", name, dir)
	}
	base := t.TempDir() // a kernel tree with the one file
	if err := os.MkdirAll(filepath.Dir(filepath.Join(base, name)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, name), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		opt  ImageOptions
		want string
	}{
		{"no sourceMap", ImageOptions{BaseDir: base}, filepath.Join(base, name)},
		{"a sourceMap of the directory", ImageOptions{BaseDir: base, SourceMap: map[string]string{dir: "/src/linux"}}, path.Join("/src/linux", name)},
		{"no base", ImageOptions{}, path.Join(dir, name)},
	} {
		img, err := LoadImage(k.Vmlinux, "", c.opt)
		if err != nil {
			t.Fatal(err)
		}
		loc, ok := img.t.PCToLine(pc)
		if !ok || loc.File != c.want {
			t.Errorf("%s: start_kernel's line is in %q (%v), want %q", c.what, loc.File, ok, c.want)
		}
	}
}
