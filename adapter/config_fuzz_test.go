package adapter

import (
	"encoding/json"
	"testing"
)

// FuzzConfig decodes arbitrary launch and attach arguments the way
// launch and attach do: they are accepted or refused with an error, never
// a panic, and what validate accepts is in range. Seed corpus:
// testdata/fuzz/FuzzConfig.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		`{"program":"/nonexistent","vcpus":2,"memory":64}`,
		`{"program":"/dev/zero"}`,
		`{"program":"/","symbols":"/etc"}`,
		`{"program":"/proc/self/exe","hypervisor":"qemu","qemuArgs":["-S"],"accel":"kvm","irqchip":true}`,
		`{"program":"/proc/self/exe","vcpus":-1,"memory":1e99}`,
		`{"gdbServer":"localhost:1234","stub":"bhyve","stopOnEntry":false}`,
		`{"gdbServer":"/tmp/sock","program":"x","prgram":"typo","__sessionId":"1"}`,
		`{"gdbServer":"[::1]"}`, `[]`, `null`, `{"program":7}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var lc LaunchConfig
		if json.Unmarshal(raw, &lc) == nil && lc.validate() == nil {
			if lc.VCPUs < 1 || lc.VCPUs > MaxVCPUs || lc.Memory < 4 || lc.Memory > MaxMemoryMiB || lc.Program == "" {
				t.Fatalf("validate accepted %+v", lc)
			}
		}
		var ac AttachConfig
		if json.Unmarshal(raw, &ac) == nil && ac.validate() == nil && ac.GDBServer == "" {
			t.Fatalf("validate accepted %+v", ac)
		}
		_ = unknownProps(raw, lc)
		_ = unknownProps(raw, ac)
	})
}
