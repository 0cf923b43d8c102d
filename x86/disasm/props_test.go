package disasm

import (
	"fmt"
	"strings"
)

var kindNames = map[Kind]string{KindOther: "other", KindCall: "call", KindRet: "ret", KindJump: "jump",
	KindCondJump: "condjump", KindInt: "int", KindIret: "iret", KindSyscall: "syscall", KindHalt: "halt", KindLIDT: "lidt", KindNop: "nop"}

// props writes what Decode classified, as testdata/decode.txt does.
func props(d Inst) string {
	p := []string{kindNames[d.Kind]}
	if d.HasTarget {
		p = append(p, fmt.Sprintf("target=%#x", d.Target))
	}
	if d.Rep {
		p = append(p, "rep")
	}
	if d.Pushf {
		p = append(p, fmt.Sprintf("pushf=%d", d.PushSize))
	}
	if d.LoadsFlags {
		p = append(p, "loadsflags")
	}
	if d.MayFault {
		p = append(p, "fault")
	}
	if d.SelfLoop() {
		p = append(p, "selfloop")
	}
	return strings.Join(p, " ")
}
