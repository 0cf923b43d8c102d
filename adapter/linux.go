package adapter

import (
	"fmt"
	"os"

	"github.com/google/go-dap"

	"vmdap/session"
)

// Linux awareness: the launch/attach properties (modules, kernelLog,
// taskThreads), the DAP modules view and module events. The session does
// the work (session/linux*.go).

// linuxConfig is the Linux part of the launch and attach configurations.
type linuxConfig struct {
	// Modules is a folder with the kernel modules' .ko files with DWARF
	// (searched recursively; Debian's -dbg package has them under
	// usr/lib/debug/lib/modules/<version>): each loaded module's symbols
	// are loaded at its addresses, and breakpoints in modules not loaded
	// yet stay pending until they load.
	Modules string `json:"modules,omitempty"`
	// KernelLog prints the kernel log records written since the last stop
	// to the debug console at each stop.
	KernelLog bool `json:"kernelLog,omitempty"`
	// TaskThreads shows the kernel's tasks as threads beside the vCPUs.
	TaskThreads bool `json:"taskThreads,omitempty"`
}

func (l linuxConfig) validate() error {
	if l.Modules == "" {
		return nil
	}
	st, err := os.Stat(l.Modules)
	if err != nil {
		return cfgErr(`"modules" %q cannot be read: %v`, l.Modules, err)
	}
	if !st.IsDir() {
		return cfgErr(`"modules" must be a folder (of .ko files with DWARF), and %q is a file`, l.Modules)
	}
	return nil
}

func (l linuxConfig) options() session.LinuxOptions {
	return session.LinuxOptions{Modules: l.Modules, KernelLog: l.KernelLog, TaskThreads: l.TaskThreads}
}

// errModules is the modules request's error id.
const errModules = 3050

func (c *conn) onModules(m *dap.ModulesRequest, s *session.Session) {
	mods, err := s.Modules()
	if err != nil {
		c.fail(&m.Request, errModules, err)
		return
	}
	resp := &dap.ModulesResponse{Response: newResponse(&m.Request)}
	resp.Body.Modules = []dap.Module{}
	start := min(max(m.Arguments.StartModule, 0), len(mods))
	end := len(mods)
	if n := m.Arguments.ModuleCount; n > 0 && start+n < end {
		end = start + n
	}
	for _, mi := range mods[start:end] {
		resp.Body.Modules = append(resp.Body.Modules, toModule(mi))
	}
	resp.Body.TotalModules = len(mods)
	c.send(resp)
}

func toModule(mi session.ModuleInfo) dap.Module {
	d := dap.Module{Id: mi.ID, Name: mi.Name, Path: mi.Path, SymbolStatus: mi.SymbolStatus, IsOptimized: mi.Optimized}
	if mi.Path != "" {
		d.SymbolFilePath = mi.Path
	}
	if mi.High > mi.Low {
		d.AddressRange = fmt.Sprintf("%#x-%#x", mi.Low, mi.High)
	}
	return d
}

func (c *conn) moduleEvent(ev session.ModuleChanged) {
	m := &dap.ModuleEvent{Event: newEvent("module")}
	m.Body = dap.ModuleEventBody{Reason: moduleReasons[ev.Change], Module: toModule(ev.Module)}
	c.send(m)
}
