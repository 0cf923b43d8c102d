package session

import (
	"errors"
	"fmt"
	"strings"

	"vmdap/vmm"
)

// The debug console's "monitor CMD": the line goes to the hypervisor's
// monitor (QEMU's human monitor, through its GDB stub), as gdb's monitor
// command sends it, for what only the hypervisor knows: info mem, info
// tlb, info mtree, info pic, info lapic, system_reset.

// isMonitorCommand reports whether a console line is "monitor CMD", CMD
// a word (a bare "monitor", or "monitor + 1", stays an expression: it
// may be a variable).
func isMonitorCommand(l string) bool {
	rest, ok := strings.CutPrefix(l, "monitor")
	cmd := strings.TrimSpace(rest)
	return ok && cmd != "" && (rest[0] == ' ' || rest[0] == '\t') && isAlpha(cmd[0])
}

// monitorRefused are the monitor commands that would resume the guest
// behind the stub's back (the session believes it stopped) or take the
// stub away from the session.
var monitorRefused = map[string]string{
	"c":         "it resumes the guest behind the debugger: use Continue",
	"cont":      "it resumes the guest behind the debugger: use Continue",
	"gdbserver": "it moves the GDB stub this session is attached to",
}

// monitor runs a monitor command while the guest is stopped. The command
// may change the guest (system_reset): the stop's frames are read again
// and the client is told to refresh its views.
func (s *Session) monitor(line string) (string, error) {
	cmd := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "monitor"))
	if why, bad := monitorRefused[strings.Fields(cmd)[0]]; bad {
		return "", fmt.Errorf("monitor %s is refused: %s", strings.Fields(cmd)[0], why)
	}
	m, ok := s.t.(*taskTarget).unwrap().(vmm.Monitor)
	if !ok && s.dump != nil {
		return "", errors.New("monitor: this session shows a core dump: no hypervisor runs it (info dump says what it is)")
	}
	if !ok {
		return "", errors.New("monitor: this target has no monitor (vmdap's own VMM answers with the console's commands, help lists them, and the Registers view; QEMU's monitor is there when vmdap launches QEMU or attaches to its GDB stub)")
	}
	var out string
	err := s.stopped(func() error {
		var err error
		out, err = m.MonitorCommand(cmd)
		// What this stop knew may no longer hold (a system_reset).
		s.frames, s.hidden = map[int][]Frame{}, nil
		s.ret, s.excInfo = nil, nil
		s.linux.vcpuNames = nil
		s.linux.tasks.stale = true
		return err
	})
	if err != nil {
		return "", fmt.Errorf("monitor %s: %w", cmd, err)
	}
	s.emit(Invalidated{})
	// QEMU's monitor ends its lines as a terminal's: \r\n.
	return strings.TrimRight(strings.ReplaceAll(out, "\r\n", "\n"), "\n"), nil
}
