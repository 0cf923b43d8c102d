// Command vmdap is a Debug Adapter Protocol server for x86-64 virtual
// machine guests: kernels, hypervisor payloads, bare-metal programs.
//
//	vmdap [dap]                  serve DAP on stdin/stdout (how editors start it)
//	vmdap --listen 127.0.0.1:4711 serve DAP on TCP, each client in its own session
//	vmdap check                  report what this host's KVM can do
//	vmdap demo [example]         build the example guest and debug it headlessly
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"vmdap/adapter"
	"vmdap/session/symbols"
	"vmdap/vmm"
	"vmdap/vmm/core"
	"vmdap/vmm/gdbremote"
	"vmdap/vmm/kvm"
	"vmdap/vmm/kvm/boot"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("vmdap", flag.ContinueOnError)
	listen := fs.String("listen", "", "serve DAP on this TCP address (host:port; a missing host means 127.0.0.1)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	logFile := fs.String("log-file", "", "write logs to this file (default: stderr)")
	logOutput := fs.String("log-output", "", "comma-separated traffic traces to log at debug level: dap, kvm")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	indexCache := fs.String("index-cache", defaultIndexCache(), "keep large images' symbol indexes (a kernel's) in this folder, by build ID, for faster loads of the same image; \"\" keeps none")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: vmdap [flags] [dap | check | demo [example]]\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			// Asked for (-h, --help): the usage on stdout, and success.
			fs.SetOutput(os.Stdout)
			fs.Usage()
			return 0
		}
		return 2
	}
	log, closeLog, err := setupLog(*logLevel, *logFile, *logOutput)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmdap:", err)
		return 2
	}
	defer closeLog()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "vmdap: cpuprofile:", err)
			return 2
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	traces := map[string]bool{}
	for _, t := range strings.Split(*logOutput, ",") {
		switch t = strings.TrimSpace(t); t {
		case "":
		case "dap", "kvm":
			traces[t] = true
		default:
			fmt.Fprintf(os.Stderr, "vmdap: --log-output: unknown trace %q (the traces are dap and kvm)\n", t)
			return 2
		}
	}
	if traces["dap"] || traces["kvm"] {
		log.SetLevel(logrus.DebugLevel)
	}
	srv := &adapter.Server{Backends: backends{}, Log: log, Trace: traces["dap"], IndexCache: *indexCache}

	cmd := fs.Arg(0)
	if max := map[string]int{"": 0, "dap": 1, "check": 1, "demo": 2}[cmd]; fs.NArg() > max && max > 0 {
		fmt.Fprintf(os.Stderr, "vmdap: %s: unexpected arguments %q\n", cmd, fs.Args()[max:])
		fs.Usage()
		return 2
	}
	switch {
	case cmd == "check":
		return check(os.Stdout)
	case cmd == "demo":
		return demo(os.Stdout, fs.Arg(1))
	case cmd != "" && cmd != "dap":
		fmt.Fprintf(os.Stderr, "vmdap: unknown command %q\n", cmd)
		fs.Usage()
		return 2
	case *listen != "":
		return serveTCP(srv, *listen, log)
	}
	// stdio: nothing but DAP may reach stdout.
	stopReleased := keepReleasedQEMU(log)
	defer stopReleased()
	err = srv.ServeConn(stdio{polledStdin()})
	flushIndexCaches(log)
	if err != nil {
		log.WithError(err).Error("DAP session failed")
		return 1
	}
	waitReleasedQEMU(log)
	return 0
}

// flushIndexCaches writes the symbol indexes still to be written before
// vmdap exits: a short session (a core dump opened and looked at) ends
// before its image's index is written behind the open.
func flushIndexCaches(log logrus.FieldLogger) {
	if !symbols.FlushIndexCaches(indexFlushWait) {
		log.Warnf("vmdap: the symbol index cache was not written within %v; the next session builds the index again", indexFlushWait)
	}
}

// indexFlushWait bounds flushIndexCaches (a kernel's index is written in
// a few tens of milliseconds).
const indexFlushWait = 3 * time.Second

// defaultIndexCache is the user's cache folder's vmdap/index ("" when
// there is none).
func defaultIndexCache() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "vmdap", "index")
}

// keepReleasedQEMU makes SIGTERM and SIGINT spare a QEMU the session let
// go (disconnect with terminateDebuggee: false): it is vmdap's child and
// would die with it, so vmdap logs the signal and stays (an editor stops
// its adapter with SIGTERM at the end of a session). Without one, the
// signal ends vmdap as it always did. The returned func undoes it.
func keepReleasedQEMU(log logrus.FieldLogger) func() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sig:
				if pids := gdbremote.Released(); len(pids) > 0 {
					log.Infof("vmdap: %v: staying up for QEMU %v, which the session let go (kill vmdap to end it too)", s, pids)
					continue
				}
				signal.Stop(sig)
				flushIndexCaches(log)
				if p, err := os.FindProcess(os.Getpid()); err == nil {
					p.Signal(s) // the default action, as without this handler
				}
				return
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

// waitReleasedQEMU keeps vmdap alive while a QEMU it launched and the
// session let go runs: it is vmdap's child and would die with it.
func waitReleasedQEMU(log logrus.FieldLogger) {
	pids := gdbremote.Released()
	if len(pids) == 0 {
		return
	}
	log.Infof("vmdap: QEMU %v runs on after the session (terminateDebuggee: false); vmdap waits for it, as its parent", pids)
	gdbremote.WaitReleased(context.Background())
}

func setupLog(level, file, output string) (*logrus.Logger, func(), error) {
	log := logrus.New()
	lv, err := logrus.ParseLevel(level)
	if err != nil {
		return nil, nil, fmt.Errorf("--log-level: %w", err)
	}
	log.SetLevel(lv)
	log.Out = os.Stderr
	closeFn := func() {}
	if file != "" {
		f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("--log-file: %w", err)
		}
		log.Out = f
		closeFn = func() { f.Close() }
	}
	return log, closeFn, nil
}

// listenAddr keeps a listener on loopback unless a host is named.
func listenAddr(a string) (string, error) {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		if !strings.Contains(a, ":") {
			return net.JoinHostPort("127.0.0.1", a), nil
		}
		return "", fmt.Errorf("--listen %q: want host:port", a)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

func serveTCP(srv *adapter.Server, addr string, log *logrus.Logger) int {
	a, err := listenAddr(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmdap:", err)
		return 2
	}
	l, err := net.Listen("tcp", a)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmdap:", err)
		return 1
	}
	log.Infof("vmdap: serving DAP on %s", l.Addr())
	fmt.Fprintf(os.Stderr, "vmdap: listening on %s\n", l.Addr())
	if w := exposureWarning(l.Addr()); w != "" {
		log.Warn(w)
		fmt.Fprintln(os.Stderr, "vmdap: warning:", w)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; l.Close() }()
	err = srv.Serve(l)
	flushIndexCaches(log)
	if err != nil {
		log.WithError(err).Error("serving")
		return 1
	}
	return 0
}

// exposureWarning says what binding a non-loopback address exposes, or
// "" for loopback.
func exposureWarning(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || ta.IP.IsLoopback() {
		return ""
	}
	where := "every network interface"
	if !ta.IP.IsUnspecified() {
		where = ta.IP.String()
	}
	return fmt.Sprintf("DAP is served on %s with no authentication: anyone who reaches port %d can run programs (qemuPath), read files (program, symbols) and start guests as this user; bind 127.0.0.1 unless you mean it", where, ta.Port)
}

// stdio is the DAP stream of stdio mode.
type stdio struct{ in *os.File }

func (s stdio) Read(p []byte) (int, error) { return s.in.Read(p) }
func (stdio) Write(p []byte) (int, error)  { return os.Stdout.Write(p) }
func (stdio) Close() error                 { return nil }

// backends connects the adapter to the concrete VMMs.
type backends struct{}

func (backends) Launch(ctx context.Context, cfg adapter.LaunchConfig, serial io.Writer, log logrus.FieldLogger) (vmm.Target, error) {
	if cfg.Hypervisor == "qemu" {
		return launchQEMU(ctx, cfg, serial, log)
	}
	// The machine copies what it loads: the files are mapped only while
	// it is built.
	img, release, err := mapFile(cfg.Program)
	if err != nil {
		return nil, err
	}
	defer release()
	var initrd []byte
	if cfg.Initrd != "" {
		var releaseInitrd func()
		if initrd, releaseInitrd, err = mapFile(cfg.Initrd); err != nil {
			return nil, err
		}
		defer releaseInitrd()
	}
	m, err := kvm.New(kvm.Config{
		Image: img, Protocol: boot.Protocol(cfg.Boot), Memory: uint64(cfg.Memory) << 20, VCPUs: cfg.VCPUs,
		Cmdline: cfg.Args, Initrd: initrd, Serial: serial, Log: log, IRQChip: cfg.IRQChip,
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (backends) Attach(ctx context.Context, cfg adapter.AttachConfig, log logrus.FieldLogger) (vmm.Target, error) {
	if cfg.CoreFile != "" {
		t, err := core.Open(cfg.CoreFile, log)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return t, nil
	}
	return attachGDB(ctx, cfg, log)
}

func check(w io.Writer) int {
	fmt.Fprintln(w, "vmdap check: the KVM host")
	h, err := kvm.Probe(nil)
	if err != nil {
		fmt.Fprintln(w, "  /dev/kvm: NOT usable:", err)
		var ae *kvm.AccessError
		if errors.As(err, &ae) {
			fmt.Fprintln(w, "  fix:", ae.Fix)
		}
		return 1
	}
	fmt.Fprintln(w, "  /dev/kvm: accessible")
	said := map[string]bool{}
	for _, l := range h.Lines() {
		fmt.Fprintln(w, "  "+l)
		said[l] = true
	}
	for _, n := range h.Capabilities().Notes {
		if !said[n] {
			fmt.Fprintln(w, "  note: "+n)
		}
	}
	return 0
}

// launchQEMU runs the guest under QEMU and attaches to its GDB stub.
func launchQEMU(ctx context.Context, cfg adapter.LaunchConfig, serial io.Writer, log logrus.FieldLogger) (vmm.Target, error) {
	img, release, err := mapFile(cfg.Program)
	if err != nil {
		return nil, err
	}
	entry, err := qemuEntry(img, boot.Protocol(cfg.Boot))
	release()
	if err != nil {
		return nil, err
	}
	qc := gdbremote.QEMUConfig{Path: cfg.QEMUPath, Program: cfg.Program, Initrd: cfg.Initrd, MemoryMiB: cfg.Memory, VCPUs: cfg.VCPUs,
		Cmdline: cfg.Args, Accel: cfg.Accel, ExtraArgs: cfg.QEMUArgs, Serial: serial, Log: log, Entry: entry}
	if cfg.Accel == "kvm" {
		// Where KVM emulates ring 0 (PVM), an int3 kills a QEMU-KVM guest
		// and debug-register watchpoints never fire: breakpoints use the
		// debug registers, watchpoints are emulated.
		if h, err := kvm.Probe(log); err == nil && h.Vendor == "PVM" {
			qc.NoSWBreakpoints = true
			qc.NoStubWatchpoints = !h.DRWatch
		}
	}
	t, err := gdbremote.LaunchQEMU(ctx, qc)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return t, nil
}

// qemuEntry finds where QEMU's -kernel will enter the image, and
// refuses a requested boot protocol (want) QEMU will not use for it.
// QEMU picks the protocol itself: a bzImage boots as Linux; else it tries
// Multiboot 1 before PVH (x86_load_linux: "we try multiboot first"), so
// an image with both a Multiboot header and a PVH note is entered at its
// Multiboot entry, where vmdap's own auto order would choose PVH.
func qemuEntry(img []byte, want boot.Protocol) (uint64, error) {
	im, err := boot.Parse(img, boot.ProtoAuto)
	if err != nil {
		return 0, err
	}
	if im.Protocol == boot.ProtoPVH {
		if mb, err := boot.Parse(img, boot.ProtoMultiboot); err == nil {
			im = mb
		}
	}
	if want != "" && want != boot.ProtoAuto && want != im.Protocol {
		if _, err := boot.Parse(img, want); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf(`"boot": %q cannot be chosen under QEMU: its -kernel boots this image through %s (it takes a bzImage as Linux, then tries Multiboot 1 before PVH); leave "boot" out, or use "hypervisor": "kvm", which boots it through %s`, want, im.Protocol, want)
	}
	switch im.Protocol {
	case boot.ProtoELF64:
		return 0, fmt.Errorf(`QEMU's -kernel boots Linux bzImages, Multiboot (ELF32) and PVH kernels; this is a plain ELF64 kernel: add a Multiboot header or a PVH note, or use "hypervisor": "kvm"`)
	case boot.ProtoMultiboot2:
		return 0, fmt.Errorf(`QEMU's -kernel does not boot Multiboot 2 kernels (it takes Linux bzImages, Multiboot 1 and PVH); use "hypervisor": "kvm", which boots Multiboot 2`)
	case boot.ProtoLinux:
		// QEMU's option ROM runs the real-mode setup code, which enters
		// the protected-mode kernel at its 32-bit entry, code32_start
		// (where QEMU loads it, 0x100000).
		return boot.LinuxCode32Start, nil
	}
	return im.Entry, nil
}

// attachGDB attaches to a running hypervisor's GDB stub.
func attachGDB(ctx context.Context, cfg adapter.AttachConfig, log logrus.FieldLogger) (vmm.Target, error) {
	t, err := gdbremote.Attach(ctx, gdbremote.Config{Addr: cfg.GDBServer, Stub: cfg.Stub, Log: log})
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return t, nil
}
