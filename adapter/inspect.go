package adapter

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/google/go-dap"

	"vmdap/session"
)

func memRef(a uint64) string { return fmt.Sprintf("0x%x", a) }

func parseMemRef(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty memory reference")
	}
	// A pointer's value as vmdap shows it names its target after the
	// address (0x104000 <counter>): the address is the reference.
	if i := strings.Index(s, " <"); i > 0 && strings.HasSuffix(s, ">") {
		s = s[:i]
	}
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("bad memory reference %q (want a 0x… address)", s)
	}
	return v, nil
}

// Lines and columns as the client counts them (initialize's
// linesStartAt1 and columnsStartAt1; vmdap counts from 1).

func (c *conn) lineIn(l int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lines1 {
		return l
	}
	return l + 1
}

func (c *conn) lineOut(l int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lines1 || l == 0 {
		return l
	}
	return l - 1
}

// lineOutPtr is lineOut for an optional line field: nil for none (0),
// so that a client counting from 0 gets its first line as 0, not left out.
func (c *conn) lineOutPtr(l int) *int {
	if l <= 0 {
		return nil
	}
	o := c.lineOut(l)
	return &o
}

// source is a file as the client names it: a path, or a file:// URI to
// a client that asked for them (pathFormat "uri").
func (c *conn) source(path string) *dap.Source {
	c.mu.Lock()
	uris := c.uris
	c.mu.Unlock()
	p := path
	if uris && filepath.IsAbs(path) {
		p = (&url.URL{Scheme: "file", Path: filepath.ToSlash(path)}).String()
	}
	return &dap.Source{Name: filepath.Base(path), Path: p}
}

// pathIn is a client's path or file:// URI as a path.
func (c *conn) pathIn(p string) string {
	if u, err := url.Parse(p); err == nil && u.Scheme == "file" && (u.Host == "" || u.Host == "localhost") {
		return filepath.FromSlash(u.Path)
	}
	return p
}

func (c *conn) colIn(col int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cols1 {
		return col
	}
	return col + 1
}

func (c *conn) colOut(col int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cols1 {
		return col
	}
	return col - 1
}

// frameArg resolves an optional frameId: none (0) is the global scope
// (the spec's rule for evaluate), an id not handed out at this stop is
// refused.
func (c *conn) frameArg(id int) (thread, frame int, err error) {
	if id == 0 {
		return 0, session.NoFrame, nil
	}
	f, ok := c.handles.frame(id)
	if !ok {
		return 0, 0, fmt.Errorf("unknown frameId %d (frame ids are valid until the guest runs again)", id)
	}
	return f.thread, f.index, nil
}

func (c *conn) onStackTrace(m *dap.StackTraceRequest, s *session.Session) {
	a := m.Arguments
	frames, err := s.StackTrace(a.ThreadId)
	if err != nil {
		c.fail(&m.Request, errStack, err)
		return
	}
	resp := &dap.StackTraceResponse{Response: newResponse(&m.Request)}
	resp.Body.TotalFrames = len(frames)
	start := min(max(a.StartFrame, 0), len(frames))
	end := len(frames)
	if a.Levels > 0 && a.Levels < end-start {
		end = start + a.Levels
	}
	resp.Body.StackFrames = []dap.StackFrame{}
	// A frame whose source is not on this disk is deemphasized where
	// some frame's source is (VS Code folds a run of them into "Show N
	// More Stack Frames" between those it can show); where none is (a
	// kernel without its tree), folding would hide the whole stack.
	exists := map[string]bool{}
	anyOnDisk := false
	for _, f := range frames {
		if f.File == "" || f.Line <= 0 {
			continue
		}
		if _, ok := exists[f.File]; !ok {
			exists[f.File] = fileExists(f.File)
		}
		anyOnDisk = anyOnDisk || exists[f.File]
	}
	for _, f := range frames[start:end] {
		sf := dap.StackFrame{Id: c.handles.addFrame(frameRef{thread: a.ThreadId, index: f.Index}), Name: f.Name(),
			InstructionPointerReference: memRef(f.PC)}
		if f.File != "" && f.Line > 0 {
			sf.Source = c.source(f.File)
			if !exists[f.File] && anyOnDisk {
				sf.Source.PresentationHint = "deemphasize"
			}
			sf.Line, sf.Column = c.lineOut(f.Line), c.colOut(1)
		} else {
			sf.PresentationHint = "subtle" // no source: line and column 0, to be ignored
		}
		resp.Body.StackFrames = append(resp.Body.StackFrames, sf)
	}
	c.send(resp)
}

// fileExists is used to decide whether a frame's source can be shown.
func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// scopeHints are the DAP presentation hints of the session's scopes.
var scopeHints = map[string]string{
	session.ScopeLocals: "locals", session.ScopeArguments: "arguments", session.ScopeRegisters: "registers",
}

func (c *conn) onScopes(m *dap.ScopesRequest, s *session.Session) {
	f, ok := c.handles.frame(m.Arguments.FrameId)
	if !ok {
		c.sendError(m.Seq, m.Command, errStack, fmt.Sprintf("unknown frameId %d (frame ids are valid until the guest runs again)", m.Arguments.FrameId))
		return
	}
	scopes, err := s.Scopes(f.thread, f.index)
	if err != nil {
		c.fail(&m.Request, errStack, err)
		return
	}
	resp := &dap.ScopesResponse{Response: newResponse(&m.Request)}
	resp.Body.Scopes = []dap.Scope{}
	for _, sc := range scopes {
		ref := c.handles.addVars(varRef{thread: f.thread, frame: f.index, children: sc.Vars})
		resp.Body.Scopes = append(resp.Body.Scopes, dap.Scope{Name: sc.Name, PresentationHint: scopeHints[sc.Name],
			VariablesReference: ref, NamedVariables: sc.Count, Expensive: sc.Name == session.ScopeGlobals})
	}
	c.send(resp)
}

// children expands a variablesReference (cached for the stop).
func (c *conn) children(ref int) ([]session.Var, varRef, error) {
	vr, ok := c.handles.vars1(ref)
	if !ok {
		return nil, vr, fmt.Errorf("unknown variablesReference %d (references are valid until the guest runs again)", ref)
	}
	if vr.list != nil {
		return vr.list, vr, nil
	}
	list, err := vr.children()
	if err != nil {
		return nil, vr, err
	}
	c.handles.setList(ref, list)
	return list, vr, nil
}

func (c *conn) childVar(ref int, name string) (session.Var, error) {
	if vr, ok := c.handles.vars1(ref); ok && vr.elements != nil {
		// An element by its name, [i]: made alone, wherever it is.
		var i int
		if _, err := fmt.Sscanf(name, "[%d]", &i); err == nil && i >= 0 && i < vr.count {
			if l, err := vr.elements(i, 1); err == nil && len(l) == 1 {
				return l[0], nil
			}
		}
	}
	list, _, err := c.children(ref)
	if err != nil {
		return session.Var{}, err
	}
	for _, v := range list {
		if v.Name == name {
			return v, nil
		}
	}
	return session.Var{}, fmt.Errorf("no variable %q in reference %d", name, ref)
}

// indexed reports whether a variable's children are indexed (an
// array's elements) rather than named (members, scopes, registers).
func indexed(v session.Var) bool { return strings.HasSuffix(v.Type, "]") }

func (c *conn) toVariable(v session.Var, vr varRef) dap.Variable {
	dv := dap.Variable{Name: v.Name, Value: v.Value, EvaluateName: v.EvaluateName}
	c.mu.Lock()
	if c.varTypes { // the spec: only to a client that announced supportsVariableType
		dv.Type = v.Type
	}
	c.mu.Unlock()
	if v.Children != nil {
		dv.VariablesReference = c.handles.addVars(varRef{thread: vr.thread, frame: vr.frame, children: v.Children,
			elements: v.Elements, count: v.NumChildren})
		if indexed(v) {
			dv.IndexedVariables = v.NumChildren
		} else {
			dv.NamedVariables = v.NumChildren
		}
	}
	if v.HasMemRef {
		dv.MemoryReference = memRef(v.MemRef)
	}
	if v.Presentation != "" {
		dv.PresentationHint = &dap.VariablePresentationHint{Kind: "property"}
		if v.Presentation == "readOnly" {
			dv.PresentationHint.Attributes = []string{"readOnly"}
		}
	}
	return dv
}

func (c *conn) onVariables(m *dap.VariablesRequest, s *session.Session) {
	a := m.Arguments
	if vr, ok := c.handles.vars1(a.VariablesReference); ok && vr.elements != nil {
		c.onElements(m, vr)
		return
	}
	list, vr, err := c.children(a.VariablesReference)
	if err != nil {
		c.fail(&m.Request, errVariables, err)
		return
	}
	if a.Filter != "" {
		// A reference's children are all of one kind: an array's
		// elements are indexed, everything else is named.
		idx := len(list) > 0 && strings.HasPrefix(list[0].Name, "[")
		if (a.Filter == "indexed") != idx {
			list = nil
		}
	}
	if a.Start > 0 || a.Count > 0 {
		start := min(max(a.Start, 0), len(list))
		end := len(list)
		if a.Count > 0 && a.Count < end-start {
			end = start + a.Count
		}
		list = list[start:end]
	}
	resp := &dap.VariablesResponse{Response: newResponse(&m.Request)}
	resp.Body.Variables = []dap.Variable{}
	for _, v := range list {
		resp.Body.Variables = append(resp.Body.Variables, c.toVariable(v, vr))
	}
	c.send(resp)
}

// onElements answers a variables request for an array's elements: the
// range asked for (start, count), at most session.MaxElements of them.
// Past that, or when the client asks for all of a larger array, the list
// ends with a note saying how many more there are and how to see them.
func (c *conn) onElements(m *dap.VariablesRequest, vr varRef) {
	a := m.Arguments
	resp := &dap.VariablesResponse{Response: newResponse(&m.Request)}
	resp.Body.Variables = []dap.Variable{}
	if a.Filter == "named" {
		c.send(resp)
		return
	}
	start := min(max(a.Start, 0), vr.count)
	count := vr.count - start
	if a.Count > 0 {
		count = min(a.Count, count)
	}
	n := min(count, session.MaxElements)
	list, err := vr.elements(start, n)
	if err != nil {
		c.fail(&m.Request, errVariables, err)
		return
	}
	for _, v := range list {
		resp.Body.Variables = append(resp.Body.Variables, c.toVariable(v, vr))
	}
	if n < count {
		resp.Body.Variables = append(resp.Body.Variables, dap.Variable{Name: "[…]",
			Value:            fmt.Sprintf("%d more elements (at most %d in one response): page with start and count, or evaluate an element by index", count-n, session.MaxElements),
			PresentationHint: &dap.VariablePresentationHint{Kind: "virtual", Attributes: []string{"readOnly"}}})
	}
	c.send(resp)
}

func (c *conn) onSetVariable(m *dap.SetVariableRequest, s *session.Session) {
	v, err := c.childVar(m.Arguments.VariablesReference, m.Arguments.Name)
	if err != nil {
		c.fail(&m.Request, errSetVariable, err)
		return
	}
	nv, err := s.SetVar(v, m.Arguments.Value)
	if err != nil {
		c.fail(&m.Request, errSetVariable, err)
		return
	}
	vr, _ := c.handles.vars1(m.Arguments.VariablesReference)
	dv := c.toVariable(nv, vr)
	resp := &dap.SetVariableResponse{Response: newResponse(&m.Request)}
	resp.Body = dap.SetVariableResponseBody{Value: dv.Value, Type: dv.Type, VariablesReference: dv.VariablesReference}
	c.send(resp)
}

func (c *conn) onEvaluate(j *job, m *dap.EvaluateRequest, s *session.Session) {
	a := m.Arguments
	thread, frame, err := c.frameArg(a.FrameId)
	if err != nil {
		c.fail(&m.Request, errEvaluate, err)
		return
	}
	if a.Context == "repl" && s.IsCommand(a.Expression) { // x/, xp/, gva2gpa, Linux's dmesg, tasks, lsmod
		// A long command (dump FILE) shows a progress bar, as a long
		// symbol load does, whose cancel stops it.
		var p *progress
		text, err := s.ConsoleProgress(j.ctx, thread, frame, a.Expression, func(title, object string, done, total int64) {
			if p == nil {
				p = c.newProgress(m.Seq, title, object)
			}
			p.update(done, total)
		})
		if p != nil {
			p.end("")
		}
		if err != nil {
			c.fail(&m.Request, errEvaluate, err)
			return
		}
		resp := &dap.EvaluateResponse{Response: newResponse(&m.Request)}
		resp.Body.Result = text
		c.send(resp)
		return
	}
	hex := a.Format != nil && a.Format.Hex
	expr := a.Expression
	var v session.Var
	if a.Context == "repl" {
		// The console takes gdb's forms too: p EXPR, x = 3, set var x = 3.
		var lhs, rhs string
		var assign bool
		if expr, lhs, rhs, assign = session.ReplForm(expr); assign {
			v, err = s.SetExpression(thread, frame, lhs, rhs, hex)
		} else {
			v, err = s.Evaluate(thread, frame, expr, hex)
		}
	} else {
		v, err = s.Evaluate(thread, frame, expr, hex)
	}
	if err != nil {
		c.fail(&m.Request, errEvaluate, err)
		return
	}
	dv := c.toVariable(v, varRef{thread: thread, frame: frame})
	resp := &dap.EvaluateResponse{Response: newResponse(&m.Request)}
	resp.Body = dap.EvaluateResponseBody{Result: dv.Value, Type: dv.Type, VariablesReference: dv.VariablesReference,
		NamedVariables: dv.NamedVariables, IndexedVariables: dv.IndexedVariables, MemoryReference: dv.MemoryReference}
	c.send(resp)
}

func (c *conn) onSetExpression(m *dap.SetExpressionRequest, s *session.Session) {
	a := m.Arguments
	thread, frame, err := c.frameArg(a.FrameId)
	if err != nil {
		c.fail(&m.Request, errSetVariable, err)
		return
	}
	v, err := s.SetExpression(thread, frame, a.Expression, a.Value, a.Format != nil && a.Format.Hex)
	if err != nil {
		c.fail(&m.Request, errSetVariable, err)
		return
	}
	dv := c.toVariable(v, varRef{thread: thread, frame: frame})
	resp := &dap.SetExpressionResponse{Response: newResponse(&m.Request)}
	resp.Body = dap.SetExpressionResponseBody{Value: dv.Value, Type: dv.Type, VariablesReference: dv.VariablesReference,
		NamedVariables: dv.NamedVariables, IndexedVariables: dv.IndexedVariables}
	c.send(resp)
}

// completionTypes are the DAP completion item types of the session's
// completion kinds (a register is a property of the vCPU).
var completionTypes = map[session.CompletionKind]dap.CompletionItemType{
	session.CompleteVariable: "variable", session.CompleteFunction: "function", session.CompleteField: "field",
	session.CompleteRegister: "property", session.CompleteKeyword: "keyword",
	session.CompleteConstant: "enum",
}

func (c *conn) onCompletions(m *dap.CompletionsRequest, s *session.Session) {
	a := m.Arguments
	thread, frame, err := c.frameArg(a.FrameId)
	if err != nil {
		c.fail(&m.Request, errEvaluate, err)
		return
	}
	// The column counts within the line the request names (the first
	// when it names none): the debug console's input can span lines.
	first := 0
	for n := c.lineIn(a.Line) - 1; n > 0; n-- {
		i := strings.IndexByte(a.Text[first:], '\n')
		if i < 0 {
			break
		}
		first += i + 1
	}
	last := len(a.Text)
	if i := strings.IndexByte(a.Text[first:], '\n'); i >= 0 {
		last = first + i
	}
	cursor := first + byteOffset(a.Text[first:last], c.colIn(a.Column)-1)
	items, err := s.Completions(thread, frame, a.Text, cursor)
	if err != nil {
		c.fail(&m.Request, errEvaluate, err)
		return
	}
	resp := &completionsResponseExt{Response: newResponse(&m.Request)}
	resp.Body.Targets = make([]completionItemExt, 0, len(items))
	c.mu.Lock()
	vscode := c.vscode
	c.mu.Unlock()
	for _, it := range items {
		start := c.colOut(utf16Len(a.Text[:it.Start]) + 1)
		if vscode {
			// VS Code's debug console filters an item by
			// text.substring(start, start+length) + label, reading start
			// as a 0-based offset whatever columnsStartAt1 says
			// (microsoft/vscode#101623): a 1-based start filtered every
			// item out ("No suggestions"). It places the item by length.
			start = utf16Len(a.Text[:it.Start])
		}
		resp.Body.Targets = append(resp.Body.Targets, completionItemExt{CompletionItem: dap.CompletionItem{Label: it.Label, Type: completionTypes[it.Kind],
			Length: utf16Len(a.Text[it.Start : it.Start+it.Length])}, Start: &start})
	}
	c.send(resp)
}

// byteOffset converts a 0-based offset in UTF-16 code units (DAP's
// columns) to a byte offset in s.
func byteOffset(s string, units int) int {
	for i, r := range s {
		if units <= 0 {
			return i
		}
		units -= utf16.RuneLen(r)
	}
	return len(s)
}

// utf16Len is the length of s in UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// offsetAddr is a memory reference moved by a request's byte offset,
// refused when that leaves the address space (it wrapped around).
func offsetAddr(base uint64, off int) (uint64, error) {
	a := base + uint64(int64(off))
	if off < 0 && a > base || off > 0 && a < base {
		return 0, fmt.Errorf("offset %d from %#x leaves the address space", off, base)
	}
	return a, nil
}

func (c *conn) onReadMemory(m *dap.ReadMemoryRequest, s *session.Session) {
	base, err := parseMemRef(m.Arguments.MemoryReference)
	if err != nil {
		c.fail(&m.Request, errMemory, err)
		return
	}
	addr, err := offsetAddr(base, m.Arguments.Offset)
	if err != nil {
		c.fail(&m.Request, errMemory, err)
		return
	}
	data, unreadable, err := s.ReadMemory(addr, m.Arguments.Count)
	if err != nil {
		c.fail(&m.Request, errMemory, err)
		return
	}
	resp := &dap.ReadMemoryResponse{Response: newResponse(&m.Request)}
	resp.Body = dap.ReadMemoryResponseBody{Address: memRef(addr), UnreadableBytes: unreadable}
	if len(data) > 0 {
		resp.Body.Data = base64.StdEncoding.EncodeToString(data)
	}
	c.send(resp)
}

func (c *conn) onWriteMemory(m *dap.WriteMemoryRequest, s *session.Session) {
	base, err := parseMemRef(m.Arguments.MemoryReference)
	if err != nil {
		c.fail(&m.Request, errMemory, err)
		return
	}
	data, err := base64.StdEncoding.DecodeString(m.Arguments.Data)
	if err != nil {
		c.fail(&m.Request, errMemory, fmt.Errorf("data is not base64: %w", err))
		return
	}
	addr, err := offsetAddr(base, m.Arguments.Offset)
	if err != nil {
		c.fail(&m.Request, errMemory, err)
		return
	}
	n, err := s.WriteMemory(addr, data, m.Arguments.AllowPartial)
	if err != nil {
		c.fail(&m.Request, errMemory, err)
		return
	}
	resp := &dap.WriteMemoryResponse{Response: newResponse(&m.Request)}
	resp.Body = dap.WriteMemoryResponseBody{Offset: m.Arguments.Offset, BytesWritten: n}
	c.send(resp)
}

func (c *conn) onDisassemble(j *job, m *dap.DisassembleRequest, s *session.Session) {
	a := m.Arguments
	base, err := parseMemRef(a.MemoryReference)
	if err != nil {
		c.fail(&m.Request, errDisassemble, err)
		return
	}
	addr, err := offsetAddr(base, a.Offset)
	if err != nil {
		c.fail(&m.Request, errDisassemble, err)
		return
	}
	insns, err := s.Disassemble(j.ctx, addr, a.InstructionOffset, a.InstructionCount)
	if err != nil {
		c.fail(&m.Request, errDisassemble, err)
		return
	}
	resp := &disassembleResponseExt{Response: newResponse(&m.Request)}
	resp.Body.Instructions = make([]disassembledInstructionExt, 0, len(insns))
	lastFile := ""
	for _, in := range insns {
		di := disassembledInstructionExt{DisassembledInstruction: dap.DisassembledInstruction{
			Address: memRef(in.Addr), Instruction: in.Text, Symbol: in.Symbol}, Line: c.lineOutPtr(in.Line)}
		if len(in.Bytes) > 0 {
			di.InstructionBytes = fmt.Sprintf("% x", in.Bytes)
		}
		if in.Invalid {
			di.PresentationHint = "invalid"
		}
		if in.Beyond {
			// No address (before 0, past the top): VS Code's disassembly
			// view leaves out an instruction at "-1", as lldb-dap's pads.
			di.Address = "-1"
		}
		if in.File != "" && in.File != lastFile {
			di.Location = c.source(in.File)
			lastFile = in.File
		}
		resp.Body.Instructions = append(resp.Body.Instructions, di)
	}
	c.send(resp)
}
