package vmmtest

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"testing"
)

// InitMarker is what the /init of Initramfs prints on the console once
// userspace runs, followed by the number of online CPUs ("cpus=N") and the
// kernel's uptime. It goes through the kernel log (/dev/kmsg, at a level
// quiet does not hide), which the console driver writes out at once: a
// tty write could still sit in the UART driver's buffer when /init powers
// the machine off.
const InitMarker = "VMDAP-LINUX-INIT"

// TTYMarker is what /init writes first to its standard output, the
// console tty: it reaches the serial port through the UART driver, which
// sends while the transmitter raises its interrupt (IRQ 4), so it shows
// that a user-space program's output (a shell's) gets out. It is written
// before the processes that InitMarker's line runs, which gives the
// driver time to send it before the power-off.
const TTYMarker = "VMDAP-LINUX-TTY"

// Initramfs builds a tiny initial RAM disk (an uncompressed newc cpio, so
// the kernel does not spend its emulated ring-0 time decompressing it):
// Debian's static busybox and an /init script that mounts /proc, writes
// TTYMarker to the console tty, prints InitMarker with the CPU count and
// uptime through the kernel log, runs extra (a
// shell fragment, may be empty) and powers the machine off with
// `poweroff -f`. It skips the test when busybox-static is not installed.
func Initramfs(t testing.TB, extra string) []byte {
	t.Helper()
	return InitramfsWith(t, extra, nil)
}

// InitramfsWith is Initramfs with more files at the root (by name, such as
// a kernel module for extra to load: "mod.ko").
func InitramfsWith(t testing.TB, extra string, files map[string][]byte) []byte {
	t.Helper()
	bb := requireStaticBusybox(t)
	script := "#!/bin/busybox sh\n" +
		"B=/bin/busybox\n" +
		"$B mount -t proc proc /proc\n" +
		"echo " + TTYMarker + "\n" +
		"echo \"<2>" + InitMarker + " cpus=$($B grep -c ^processor /proc/cpuinfo) uptime=$($B cut -d' ' -f1 /proc/uptime)\" >/dev/kmsg\n" +
		extra + "\n" +
		"$B poweroff -f\n"
	var w cpioWriter
	w.dir("bin")
	w.dir("dev")
	w.dir("proc")
	w.dir("sys")
	w.dir("tmp")
	w.node("dev/console", 0o020600, 5, 1) // the console init's stdio opens
	w.node("dev/null", 0o020666, 1, 3)
	w.node("dev/kmsg", 0o020644, 1, 11)
	w.file("bin/busybox", 0o100755, bb)
	w.file("bin/sh", 0o120777, []byte("busybox"))
	w.file("init", 0o100755, []byte(script))
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w.file(n, 0o100644, files[n])
	}
	return w.finish()
}

// requireStaticBusybox returns the static busybox binary, or skips.
func requireStaticBusybox(t testing.TB) []byte {
	t.Helper()
	path := "/bin/busybox"
	if _, err := os.Stat(path); err != nil {
		p, err := exec.LookPath("busybox")
		if err != nil {
			t.Skip("skipping: busybox is not installed (apt-get install busybox-static; .ci/run installs it)")
		}
		path = p
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("skipping: cannot read %s: %v", path, err)
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Skipf("skipping: %s is not an ELF file: %v", path, err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Skipf("skipping: %s is dynamically linked; the initramfs needs Debian's busybox-static", path)
		}
	}
	return data
}

// cpioWriter writes the "newc" cpio format the kernel's initramfs
// unpacker reads (Documentation/driver-api/early-userspace/buffer-format.rst):
// a 110-byte ASCII header per entry, the NUL-terminated name and the data,
// each padded to 4 bytes, ending with "TRAILER!!!".
type cpioWriter struct {
	b   bytes.Buffer
	ino int
}

func (w *cpioWriter) entry(name string, mode uint32, rdevMajor, rdevMinor int, data []byte) {
	w.ino++
	nlink := 1
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	fmt.Fprintf(&w.b, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		w.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	w.b.WriteString(name)
	w.b.WriteByte(0)
	w.pad()
	w.b.Write(data)
	w.pad()
}

func (w *cpioWriter) pad() {
	for w.b.Len()%4 != 0 {
		w.b.WriteByte(0)
	}
}

func (w *cpioWriter) dir(name string)                      { w.entry(name, 0o040755, 0, 0, nil) }
func (w *cpioWriter) file(name string, m uint32, d []byte) { w.entry(name, m, 0, 0, d) }
func (w *cpioWriter) node(name string, m uint32, maj, min int) {
	w.entry(name, m, maj, min, nil)
}

func (w *cpioWriter) finish() []byte {
	w.entry("TRAILER!!!", 0, 0, 0, nil)
	return w.b.Bytes()
}
