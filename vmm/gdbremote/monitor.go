package gdbremote

import (
	"fmt"

	"vmdap/vmm"
	"vmdap/vmm/gdbremote/rsp"
)

var _ vmm.Monitor = (*Target)(nil)

// MonitorCommand implements vmm.Monitor: the command goes to the stub's
// monitor (qRcmd). What was read at this stop is forgotten, as the
// command may have changed it.
func (t *Target) MonitorCommand(cmd string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.stoppedLocked(); err != nil {
		return "", err
	}
	if t.noMonitor {
		return "", fmt.Errorf("the %s stub has no monitor", t.stubName)
	}
	out, err := t.c.Monitor(cmd)
	clear(t.cache)
	clear(t.mem)
	if rsp.Unsupported(err) {
		t.noMonitor = true
		return "", fmt.Errorf("the %s stub has no monitor (it refused qRcmd)", t.stubName)
	}
	return out, err
}
