package adapter

import (
	"encoding/json"
	"fmt"
	"runtime/debug"

	"github.com/google/go-dap"
)

// Custom requests: vmdap's own commands, which the VS Code extension sends
// with customRequest (go-dap decodes only the spec's).

// cmdHexDisplay switches integer display between hex and decimal in the
// variables, watch and hover views: {"hex": true}. The extension's "Toggle
// Hexadecimal Display" sends it.
const cmdHexDisplay = "vmdap.hexDisplay"

// customSafe handles a custom request; false: not one of vmdap's.
func (c *conn) customSafe(seq int, command string, raw []byte) (handled bool) {
	if command != cmdHexDisplay {
		return false
	}
	req := &dap.Request{ProtocolMessage: dap.ProtocolMessage{Seq: seq, Type: "request"}, Command: command}
	defer func() {
		if p := recover(); p != nil {
			c.log.Errorf("panic handling %s: %v\n%s", command, p, debug.Stack())
			c.sendError(seq, command, errInternal, fmt.Sprintf("internal error in vmdap while handling %s: %v", command, p))
		}
	}()
	var m struct {
		Arguments struct {
			Hex *bool `json:"hex"`
		} `json:"arguments"`
	}
	if err := json.Unmarshal(raw, &m); err != nil || m.Arguments.Hex == nil {
		c.sendError(seq, command, errMalformed, command+`: arguments must be {"hex": true|false}`)
		return true
	}
	s := c.session()
	if s == nil {
		c.sendError(seq, command, errNotLaunched, command+": no guest yet: send launch or attach first")
		return true
	}
	resp := newResponse(req)
	c.send(&resp)
	s.SetHexDisplay(*m.Arguments.Hex) // before the next request is read; its invalidated event follows the response
	return true
}
