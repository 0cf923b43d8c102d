package adapter

import (
	"encoding/json"

	"github.com/google/go-dap"
)

// Custom requests: vmdap's own commands, which the VS Code extension sends
// with customRequest (go-dap decodes only the spec's).

// cmdHexDisplay switches integer display between hex and decimal in the
// variables, watch and hover views: {"hex": true}. The extension's "Toggle
// Hexadecimal Display" sends it.
const cmdHexDisplay = "vmdap.hexDisplay"

// onCustom carries out one of vmdap's custom requests.
func (c *conn) onCustom(j *job) {
	var m struct {
		Arguments struct {
			Hex *bool `json:"hex"`
		} `json:"arguments"`
	}
	if err := json.Unmarshal(j.raw, &m); err != nil || m.Arguments.Hex == nil {
		c.sendError(j.seq, j.cmd, errBadArguments, j.cmd+`: arguments must be {"hex": true|false}`)
		return
	}
	s := c.session()
	if s == nil {
		c.sendError(j.seq, j.cmd, errNotLaunched, j.cmd+": no guest yet: send launch or attach first")
		return
	}
	req := &dap.Request{ProtocolMessage: dap.ProtocolMessage{Seq: j.seq, Type: "request"}, Command: j.cmd}
	resp := newResponse(req)
	c.hold() // the invalidated event follows the response
	defer c.release()
	c.send(&resp)
	s.SetHexDisplay(*m.Arguments.Hex)
}
