package adapter

import "github.com/google/go-dap"

// DAP 1.71 fields go-dap v0.12.0 does not have. Outgoing messages embed
// the go-dap type and add the fields; incoming requests are decoded by
// go-dap and their raw bytes decoded again into these.

type breakpointMode struct {
	Mode        string   `json:"mode"`
	Label       string   `json:"label"`
	Description string   `json:"description,omitempty"`
	AppliesTo   []string `json:"appliesTo"`
}

type capabilitiesExt struct {
	dap.Capabilities
	SupportsDataBreakpointBytes bool             `json:"supportsDataBreakpointBytes,omitempty"`
	BreakpointModes             []breakpointMode `json:"breakpointModes,omitempty"`
}

type initializeResponseExt struct {
	dap.Response
	Body capabilitiesExt `json:"body"`
}

// capabilitiesEventExt carries what changed since initialize, withdrawn
// capabilities as an explicit false or [] (see capabilitiesChange).
type capabilitiesEventExt struct {
	dap.Event
	Body struct {
		Capabilities map[string]any `json:"capabilities"`
	} `json:"body"`
}

type breakpointExt struct {
	dap.Breakpoint
	// Line shadows go-dap's, which omits 0: the first line to a client
	// that counts lines from 0 (lineOutPtr).
	Line   *int   `json:"line,omitempty"`
	Reason string `json:"reason,omitempty"` // "pending" | "failed"
}

type setBreakpointsResponseExt struct {
	dap.Response
	Body struct {
		Breakpoints []breakpointExt `json:"breakpoints"`
	} `json:"body"`
}

type breakpointEventExt struct {
	dap.Event
	Body struct {
		Reason     string        `json:"reason"`
		Breakpoint breakpointExt `json:"breakpoint"`
	} `json:"body"`
}

type disassembledInstructionExt struct {
	dap.DisassembledInstruction
	Line             *int   `json:"line,omitempty"`             // as breakpointExt's
	PresentationHint string `json:"presentationHint,omitempty"` // "normal" | "invalid"
}

type disassembleResponseExt struct {
	dap.Response
	Body struct {
		Instructions []disassembledInstructionExt `json:"instructions"`
	} `json:"body"`
}

type stepInTargetExt struct {
	dap.StepInTarget
	Line *int `json:"line,omitempty"` // as breakpointExt's
}

type stepInTargetsResponseExt struct {
	dap.Response
	Body struct {
		Targets []stepInTargetExt `json:"targets"`
	} `json:"body"`
}

// completionItemExt always carries start: go-dap omits a 0 start, which
// to a client counting columns from 0 is the text's first column (and an
// item without start is inserted at the cursor, overwriting nothing).
type completionItemExt struct {
	dap.CompletionItem
	Start *int `json:"start,omitempty"`
}

type completionsResponseExt struct {
	dap.Response
	Body struct {
		Targets []completionItemExt `json:"targets"`
	} `json:"body"`
}

// Incoming extensions (decoded from the raw request).

type dataBreakpointInfoArgsExt struct {
	Arguments struct {
		AsAddress bool   `json:"asAddress"`
		Bytes     int    `json:"bytes"`
		Mode      string `json:"mode"`
	} `json:"arguments"`
}

type setBreakpointsArgsExt struct {
	Arguments struct {
		Breakpoints []struct {
			Mode string `json:"mode"`
		} `json:"breakpoints"`
	} `json:"arguments"`
}

type setFunctionBreakpointsArgsExt setBreakpointsArgsExt
type setInstructionBreakpointsArgsExt setBreakpointsArgsExt

type initializeArgsExt struct {
	Arguments struct {
		SupportsMemoryEvent      bool   `json:"supportsMemoryEvent"`
		SupportsInvalidatedEvent bool   `json:"supportsInvalidatedEvent"`
		LinesStartAt1            *bool  `json:"linesStartAt1"` // absent means true
		ColumnsStartAt1          *bool  `json:"columnsStartAt1"`
		ClientID                 string `json:"clientID"`
	} `json:"arguments"`
}
