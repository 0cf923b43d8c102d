package vmmtest

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The gdb oracle: what gdb shows at each stop of a guest booted under
// QEMU (TCG, stopped at reset, its GDB stub on a loopback port), for
// tests that compare vmdap's view of the same stops with gdb's, so that
// the expected values are not written by hand.

// Oracle says what to run and where to stop.
type Oracle struct {
	// QEMU is the emulator (qemu-system-x86_64, or qemu-system-i386 for a
	// 32-bit guest, whose stub then describes 32-bit registers).
	QEMU string
	// Kernel is the file QEMU's -kernel boots (a Multiboot ELF32).
	Kernel string
	// QEMUArgs, when set, replace the machine arguments (memory, serial,
	// devices, -kernel …); -accel tcg, -S and -gdb are always given.
	QEMUArgs []string
	// Symbols is the ELF file gdb reads.
	Symbols string
	// Breaks are gdb locations ("file:line", "function"), in any order.
	Breaks []string
	// Globals are expressions printed at every stop.
	Globals []string
	// MaxStops bounds the stops (default 64).
	MaxStops int
	// Frames bounds the frames described per stop (default 12).
	Frames int
}

// OracleStop is one stop as gdb saw it.
type OracleStop struct {
	PC      uint64        `json:"pc"`
	Hit     []int         `json:"hit"` // indices into Oracle.Breaks
	Frames  []OracleFrame `json:"frames"`
	Globals []OracleVar   `json:"globals"`
	Error   string        `json:"error"`
}

// OracleFrame is one frame of gdb's backtrace.
type OracleFrame struct {
	Name   string      `json:"name"`
	File   string      `json:"file"`
	Line   int         `json:"line"`
	PC     uint64      `json:"pc"`
	Inline bool        `json:"inline"` // a frame of an inlined call (gdb's INLINE_FRAME)
	Args   []OracleVar `json:"args"`
	Locals []OracleVar `json:"locals"`
}

// OracleVar is a variable (or expression) and its value: gdb's text, and
// its scalar leaves by path ("t.flags.level", "comm[2]"): integers in
// decimal, pointers in hex, floating values as gdb prints them,
// "<optimized out>".
type OracleVar struct {
	Name   string            `json:"name"`
	Type   string            `json:"type"`
	Text   string            `json:"text"`
	Leaves map[string]string `json:"leaves"`
}

//go:embed gdboracle.py
var oracleScript string

// RequireGDB returns gdb's path or skips the test.
func RequireGDB(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("gdb")
	if err != nil {
		t.Skip("skipping: gdb is not installed (the expected values come from it)")
	}
	return p
}

// RunOracle boots the guest under QEMU stopped at reset, attaches gdb,
// sets the breakpoints and continues from stop to stop until the guest
// exits (or MaxStops), describing each stop.
func RunOracle(t testing.TB, o Oracle) []OracleStop {
	t.Helper()
	gdb := RequireGDB(t)
	if o.MaxStops == 0 {
		o.MaxStops = 64
	}
	if o.Frames == 0 {
		o.Frames = 12
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	addr, stop := startOracleQEMU(ctx, t, o.QEMU, o.Kernel, o.QEMUArgs)
	defer stop()
	cfg := map[string]any{"breaks": o.Breaks, "globals": o.Globals, "max_stops": o.MaxStops, "frames": o.Frames, "remote": addr}
	stops, out, stderr := runGDBScript[OracleStop](ctx, t, gdb, o.Symbols, "oracle", oracleScript, "ORACLE_CONFIG", cfg)
	for _, s := range stops {
		if s.Error != "" {
			t.Fatalf("gdb oracle: %s\n%s", s.Error, stderr)
		}
	}
	if len(stops) == 0 {
		t.Fatalf("gdb oracle stopped nowhere:\n%s\n%s", out, stderr)
	}
	return stops
}

// runGDBScript runs a Python script (name.py) under gdb -batch on an
// image's symbols, with cfg written as JSON to a file whose path the
// script finds in the Python variable cfgVar, and returns each line the
// script printed after "@@", decoded as a T, with all gdb printed.
func runGDBScript[T any](ctx context.Context, t testing.TB, gdb, symbols, name, script, cfgVar string, cfg any) (lines []T, out, stderr string) {
	t.Helper()
	js, _ := json.Marshal(cfg)
	dir := t.TempDir()
	scriptFile := filepath.Join(dir, name+".py")
	if err := os.WriteFile(scriptFile, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, name+".json")
	if err := os.WriteFile(cfgFile, js, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, gdb, "-batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off",
		"-ex", "file "+symbols, "-ex", "python "+cfgVar+" = "+fmt.Sprintf("%q", cfgFile), "-x", scriptFile)
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	o, err := cmd.Output()
	if err != nil {
		t.Fatalf("gdb: %v\n%s\n%s", err, errBuf.String(), o)
	}
	for _, line := range strings.Split(string(o), "\n") {
		j, ok := strings.CutPrefix(line, "@@")
		if !ok {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(j), &v); err != nil {
			t.Fatalf("gdb %s: %v: %s", name, err, j)
		}
		lines = append(lines, v)
	}
	return lines, string(o), errBuf.String()
}

// startOracleQEMU starts QEMU (TCG) stopped at reset with its GDB stub on
// a free loopback port, booting kernel with the corpus guests' machine
// (or args, when given); stop kills it.
func startOracleQEMU(ctx context.Context, t testing.TB, qemu, kernel string, args []string) (addr string, stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	l.Close()
	if args == nil {
		args = []string{"-machine", "pc", "-m", "64", "-serial", "null", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
			"-kernel", kernel}
	}
	args = append([]string{"-accel", "tcg", "-display", "none", "-no-reboot", "-monitor", "none"}, args...)
	q := exec.CommandContext(ctx, qemu, append(args, "-S", "-gdb", "tcp:"+addr)...)
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	return addr, func() { q.Process.Kill(); q.Wait() }
}

// Shown is what gdb shows of an expression: its type (as whatis spells
// it), its value, and an integer's in hex (/x).
type Shown struct {
	Expr, Type, Text, Hex string
}

// GDBPrint evaluates expressions with gdb -batch on an ELF file, with
// no target: what gdb shows of initialised data before the guest runs.
func GDBPrint(t testing.TB, elfPath string, exprs []string) map[string]Shown {
	t.Helper()
	gdb := RequireGDB(t)
	script := `import gdb, json
for e in json.loads(EXPRS):
    v = gdb.parse_and_eval(e)
    h = ""
    if v.type.strip_typedefs().code == gdb.TYPE_CODE_INT:
        h = v.format_string(format="x")
    print("@@" + json.dumps({"Expr": e, "Type": str(v.type), "Text": str(v), "Hex": h}))
`
	shown := map[string]Shown{}
	for _, j := range gdbScript(t, gdb, elfPath, "EXPRS", exprs, script) {
		var s Shown
		if err := json.Unmarshal([]byte(j), &s); err != nil {
			t.Fatal(err)
		}
		shown[s.Expr] = s
	}
	for _, e := range exprs {
		if _, ok := shown[e]; !ok {
			t.Fatalf("gdb printed nothing of %s", e)
		}
	}
	return shown
}

// gdbScript runs a Python script in gdb -batch on an ELF file, with no
// target, with list in the global name, and returns the JSON the script
// printed after "@@" on its lines.
func gdbScript(t testing.TB, gdb, elfPath, name string, list []string, script string) []string {
	t.Helper()
	j, _ := json.Marshal(list)
	f := filepath.Join(t.TempDir(), "script.py")
	if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gdb, "-batch", "-nx", "-ex", "file "+elfPath, "-ex", "python "+name+" = "+fmt.Sprintf("%q", j), "-x", f)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gdb: %v\n%s", err, stderr.String())
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if j, ok := strings.CutPrefix(l, "@@"); ok {
			lines = append(lines, j)
		}
	}
	if len(lines) == 0 {
		t.Fatalf("gdb printed nothing:\n%s", stderr.String())
	}
	return lines
}

// GDBCommands runs gdb commands with gdb -batch on an ELF file, with no
// target, and returns what each printed.
func GDBCommands(t testing.TB, elfPath string, cmds []string) map[string]string {
	t.Helper()
	gdb := RequireGDB(t)
	script := `import gdb, json
for c in json.loads(CMDS):
    print("@@" + json.dumps({"Cmd": c, "Out": gdb.execute(c, to_string=True)}))
`
	got := map[string]string{}
	for _, j := range gdbScript(t, gdb, elfPath, "CMDS", cmds, script) {
		var r struct{ Cmd, Out string }
		if err := json.Unmarshal([]byte(j), &r); err != nil {
			t.Fatal(err)
		}
		got[r.Cmd] = strings.TrimSpace(r.Out)
	}
	for _, c := range cmds {
		if _, ok := got[c]; !ok {
			t.Fatalf("gdb printed nothing of %s", c)
		}
	}
	return got
}
