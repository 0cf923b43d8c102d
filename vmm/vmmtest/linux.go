package vmmtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Linux is Debian's cloud kernel as testdata/linux/fetch unpacks it.
type Linux struct {
	Dir     string
	Version string // e.g. 6.12.117+deb12-cloud-amd64
	Vmlinuz string // the bzImage
	Vmlinux string // the ELF with DWARF
}

// LinuxCacheDir is where testdata/linux/fetch puts the kernel:
// $VMDAP_LINUX_CACHE, else ~/.cache/vmdap/linux.
func LinuxCacheDir() string {
	if d := os.Getenv("VMDAP_LINUX_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "vmdap", "linux")
}

// RequireLinux returns the cached Linux kernel, or skips the test saying
// how to fetch it.
func RequireLinux(t testing.TB) Linux {
	t.Helper()
	dir := LinuxCacheDir()
	l := Linux{Dir: dir, Vmlinuz: filepath.Join(dir, "vmlinuz"), Vmlinux: filepath.Join(dir, "vmlinux")}
	v, err := os.ReadFile(filepath.Join(dir, "version"))
	if err != nil {
		t.Skipf("skipping: no Linux kernel in the cache %s (run testdata/linux/fetch; .ci/run does)", dir)
	}
	l.Version = strings.TrimSpace(string(v))
	for _, p := range []string{l.Vmlinuz, l.Vmlinux} {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Skipf("skipping: %s is missing (run testdata/linux/fetch)", p)
		}
	}
	return l
}

// LinuxModule is one kernel module of the cached kernel, as
// testdata/linux/fetch unpacks it.
type LinuxModule struct {
	Name string // as the kernel names it, e.g. nls_ascii
	KO   string // the module as the image package ships it (for the guest to load)
	// DebugDir is the folder of the modules' .ko files with DWARF (the
	// -dbg package's), for vmdap's "modules" setting.
	DebugDir string
}

// RequireLinuxModule returns a cached module of the kernel by its path
// under lib/modules/<version> without ".ko" (kernel/fs/nls/nls_ascii),
// or skips the test saying how to fetch it.
func RequireLinuxModule(t testing.TB, l Linux, path string) LinuxModule {
	t.Helper()
	m := LinuxModule{Name: strings.ReplaceAll(filepath.Base(path), "-", "_"),
		KO: filepath.Join(l.Dir, "modules", path+".ko"), DebugDir: filepath.Join(l.Dir, "modules-dbg")}
	for _, p := range []string{m.KO, filepath.Join(m.DebugDir, path+".ko")} {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Skipf("skipping: %s is missing (run testdata/linux/fetch)", p)
		}
	}
	return m
}
