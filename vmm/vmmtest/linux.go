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
