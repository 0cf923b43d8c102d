package symbols

import (
	"debug/dwarf"
	"sort"
)

// Call sites (DWARF 5 §3.4; GCC's DW_TAG_GNU_call_site before it): where
// a function calls, what it calls, whether as a tail call, and what its
// arguments were. They give what gdb shows beyond the unwinder: frames
// for tail calls between a caller and its callee, and the values of
// DW_OP_entry_value (an argument's value at entry, recovered in the
// caller).

// CallSite is one call in a function.
type CallSite struct {
	ReturnPC uint64 // the address after the call (or the jump, for a tail call)
	PC       uint64 // the call instruction itself, where known
	Tail     bool   // a tail call (a jump): no return to this function
	// Target is the function a direct tail call jumps to, and the one a
	// direct call calls where the site gives its address; else Callee
	// finds it by name.
	Target *Func
	Params []CallParam

	// What Callee looks up: the callee's name, its address where the
	// site gives it (link address), and the caller's unit.
	tab   *Table
	tname string
	tlow  uint64
	tcu   int32
}

// Callee returns the function a direct call calls (nil: an indirect one,
// or one not known). A site's callee is looked up by name only when asked
// for: a stack trace asks for one site of each caller, where resolving
// every site of the caller would look up dozens of names, each a scan of
// a kernel's functions until its name maps are built.
func (cs CallSite) Callee() *Func {
	if cs.Target != nil || cs.tab == nil || cs.tname == "" {
		return cs.Target
	}
	return cs.tab.pickFunc(cs.tname, cs.tcu, cs.tlow)
}

// CallParam is what one argument held at a call.
type CallParam struct {
	Loc   []byte // where the callee finds it: usually one DW_OP_regN
	Value []byte // DW_AT_call_value: an expression in the caller's frame
	// Param is the callee's formal parameter it is for (absolute DIE
	// offset; DW_AT_call_parameter, or GCC's DW_AT_abstract_origin), for
	// an argument that a clone of the callee (IPA-CP's .constprop) does
	// not receive at all: DW_OP_GNU_parameter_ref names it.
	Param uint64
}

// Additional DWARF 5 attributes and tags of call sites.
var (
	attrCallOrigin    = dwarf.Attr(0x7f)
	attrCallParameter = dwarf.Attr(0x80)
	attrCallTailCall  = dwarf.Attr(0x82)
	attrCallTarget    = dwarf.Attr(0x83)
	attrGNUTailCall   = dwarf.Attr(0x2115)
	attrGNUCallValue  = dwarf.Attr(0x2111)
	tagGNUCallSiteT   = dwarf.Tag(0x4109)
	tagGNUCallParamT  = dwarf.Tag(0x410a)
)

// CallSites returns the call sites of fn (within its inlined copies and
// blocks too), sorted by ReturnPC.
func (t *Table) CallSites(fn *Func) []CallSite {
	if fn == nil || fn.cu < 0 || fn.die == 0 {
		return nil
	}
	t.mu.Lock()
	st := t.cache.get(fn.cu)
	if cs, ok := st.calls[fn.die]; ok {
		t.mu.Unlock()
		return cs
	}
	d, r, e, _ := t.entryAt(fn.cu, fn.die)
	var raw []rawCallSite
	if e != nil && e.Children {
		collectCalls(d, r, st.base, &raw, 0)
	}
	t.mu.Unlock()
	// Resolve targets by name (outside the lock: name lookups may wait
	// for the name maps).
	out := make([]CallSite, 0, len(raw))
	slide := t.Slide()
	u := t.units[fn.cu]
	for _, rc := range raw {
		cs := rc.CallSite
		for i := range cs.Params {
			cs.Params[i].Loc = t.resolveIndexed(cs.Params[i].Loc, u)
			// A value that is an address (a global passed by
			// reference: DW_OP_addr, clang's DW_OP_addrx) moves with
			// the image, as a global's location does.
			cs.Params[i].Value = t.slideAddrOp(t.resolveIndexed(cs.Params[i].Value, u), u.format.addrSize)
		}
		if cs.ReturnPC != 0 {
			cs.ReturnPC += slide
		}
		if cs.PC != 0 {
			cs.PC += slide
		}
		if rc.targetName != "" {
			cs.tab, cs.tname, cs.tlow, cs.tcu = t, rc.targetName, rc.targetLow, fn.cu
			if cs.Tail || rc.targetLow != 0 {
				// Tail calls are followed through (TailCallsFrom); a
				// callee at a known address costs no name lookup.
				cs.Target = t.pickFunc(rc.targetName, fn.cu, rc.targetLow)
			}
		}
		out = append(out, cs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ReturnPC < out[j].ReturnPC })
	t.mu.Lock()
	if st.calls == nil {
		st.calls = map[uint64][]CallSite{}
	}
	st.calls[fn.die] = out
	t.mu.Unlock()
	return out
}

// pickFunc finds the function a call site names: the copy at low when
// known, else the one in the caller's unit (a static function), else the
// first of that name.
func (t *Table) pickFunc(name string, cu int32, low uint64) *Func {
	if low != 0 {
		// By address first (low is the link address; the functions
		// move with the slide): no name lookup.
		low += t.Slide()
		if f := t.FuncAt(low); f != nil && f.Low == low && f.Name == name {
			return f
		}
	}
	fs := t.FuncsByName(name)
	for _, f := range fs {
		if low != 0 && f.Low == low {
			return f
		}
	}
	for _, f := range fs {
		if f.cu == cu {
			return f
		}
	}
	if len(fs) > 0 {
		return fs[0]
	}
	return nil
}

// CallSiteAt returns the call site in fn whose return address is ra.
func (t *Table) CallSiteAt(fn *Func, ra uint64) (CallSite, bool) {
	cs := t.CallSites(fn)
	i := sort.Search(len(cs), func(i int) bool { return cs[i].ReturnPC >= ra })
	if i < len(cs) && cs[i].ReturnPC == ra && !cs[i].Tail {
		return cs[i], true
	}
	return CallSite{}, false
}

type rawCallSite struct {
	CallSite
	targetName string
	targetLow  uint64
}

// collectCalls walks a function's children for call sites.
// base is where the unit's view begins in .debug_info (its offsets are
// relative to it).
func collectCalls(d *dwarf.Data, r *dwarf.Reader, base uint64, out *[]rawCallSite, depth int) {
	for {
		e, err := r.Next()
		if err != nil || e == nil || e.Tag == 0 {
			return
		}
		switch {
		case e.Tag == dwarf.TagCallSite || e.Tag == tagGNUCallSiteT:
			*out = append(*out, callSiteOf(d, r, e, base))
			continue // callSiteOf consumed the children
		case (e.Tag == dwarf.TagLexDwarfBlock || e.Tag == dwarf.TagInlinedSubroutine) && e.Children && depth < 64:
			collectCalls(d, r, base, out, depth+1)
			continue
		}
		if e.Children {
			r.SkipChildren()
		}
	}
}

func callSiteOf(d *dwarf.Data, r *dwarf.Reader, e *dwarf.Entry, base uint64) rawCallSite {
	var rc rawCallSite
	if v, ok := e.Val(dwarf.AttrCallReturnPC).(uint64); ok {
		rc.ReturnPC = v
	} else if v, ok := e.Val(dwarf.AttrLowpc).(uint64); ok {
		rc.ReturnPC = v // GNU call sites: low_pc is the return address
	}
	if v, ok := e.Val(dwarf.AttrCallPC).(uint64); ok {
		rc.PC = v
	}
	rc.Tail = e.Val(attrCallTailCall) != nil || e.Val(attrGNUTailCall) != nil
	for _, a := range []dwarf.Attr{attrCallOrigin, dwarf.AttrAbstractOrigin} {
		if off, ok := e.Val(a).(dwarf.Offset); ok {
			rr := d.Reader()
			rr.Seek(off)
			if te, err := rr.Next(); err == nil && te != nil {
				rc.targetLow, _ = te.Val(dwarf.AttrLowpc).(uint64)
				name, _ := te.Val(dwarf.AttrName).(string)
				for hop := 0; name == "" && hop < 4; hop++ {
					if te = origin(d, te); te == nil {
						break
					}
					name, _ = te.Val(dwarf.AttrName).(string)
				}
				rc.targetName = name
			}
			break
		}
	}
	if !e.Children {
		return rc
	}
	for {
		c, err := r.Next()
		if err != nil || c == nil || c.Tag == 0 {
			return rc
		}
		if c.Tag == dwarf.TagCallSiteParameter || c.Tag == tagGNUCallParamT {
			var p CallParam
			p.Loc, _ = c.Val(dwarf.AttrLocation).([]byte)
			if p.Value, _ = c.Val(dwarf.AttrCallValue).([]byte); p.Value == nil {
				p.Value, _ = c.Val(attrGNUCallValue).([]byte)
			}
			for _, a := range []dwarf.Attr{attrCallParameter, dwarf.AttrAbstractOrigin} {
				if off, ok := c.Val(a).(dwarf.Offset); ok {
					p.Param = base + uint64(off)
					break
				}
			}
			if (p.Loc != nil || p.Param != 0) && p.Value != nil {
				p.Loc = append([]byte(nil), p.Loc...)
				p.Value = append([]byte(nil), p.Value...)
				rc.Params = append(rc.Params, p)
			}
		}
		if c.Children {
			r.SkipChildren()
		}
	}
}

// UnitDIE returns the absolute offset of the DIE at offset off in the
// unit of the function at pc (an operand of DW_OP_GNU_parameter_ref is
// such an offset); false when no function with DWARF is at pc.
func (t *Table) UnitDIE(pc, off uint64) (uint64, bool) {
	fn := t.FuncAt(pc)
	if fn == nil || fn.cu < 0 {
		return 0, false
	}
	return t.units[fn.cu].off + off, true
}

// TailCallsFrom returns the unique chain of functions by which from
// reaches to through tail calls alone (from first, to excluded), as gdb
// shows tail-call frames; nil when there is none or more than one (but
// from alone when from tail-calls to itself: all chains share that).
func (t *Table) TailCallsFrom(from, to *Func) []*Func {
	if from == nil || to == nil || from == to {
		return nil
	}
	key := [2]*Func{from, to}
	t.tailMu.Lock()
	chain, ok := t.tails[key]
	t.tailMu.Unlock()
	if ok {
		return chain
	}
	chain = t.tailCallsFrom(from, to)
	t.tailMu.Lock()
	if t.tails == nil || len(t.tails) >= maxTailChains {
		t.tails = map[[2]*Func][]*Func{}
	}
	t.tails[key] = chain
	t.tailMu.Unlock()
	return chain
}

// maxTailChains bounds the chains TailCallsFrom remembers: each stack
// trace asks for every caller and callee pair, and a search can read the
// call sites of 256 functions, in as many units, that the unit cache
// lets go again.
const maxTailChains = 4096

func (t *Table) tailCallsFrom(from, to *Func) []*Func {
	// A tail call from from to to itself: every other chain has from
	// first too, and what all chains share is from alone (gdb shows that
	// much of chains that differ), so the search of the others (a
	// syscall dispatcher's tail calls reach 400 functions, in as many
	// units) is not needed.
	for _, cs := range t.CallSites(from) {
		if cs.Tail && cs.Target == to {
			return []*Func{from}
		}
	}
	type node struct {
		fn   *Func
		path []*Func
	}
	var found []*Func
	paths := 0
	seen := map[*Func]bool{from: true}
	queue := []node{{from, []*Func{from}}}
	for steps := 0; len(queue) > 0 && steps < 256; steps++ {
		n := queue[0]
		queue = queue[1:]
		for _, cs := range t.CallSites(n.fn) {
			if !cs.Tail || cs.Target == nil {
				continue
			}
			if cs.Target == to {
				paths++
				found = n.path
				continue
			}
			if !seen[cs.Target] && len(n.path) < 8 {
				seen[cs.Target] = true
				queue = append(queue, node{cs.Target, append(append([]*Func(nil), n.path...), cs.Target)})
			}
		}
	}
	if paths != 1 {
		return nil
	}
	return found
}

// TailCallPC returns where fn tail-calls to: the jump itself
// (DW_AT_call_pc), else the address after it (DW_AT_call_return_pc, as gdb
// shows such a frame's pc: after says so); 0 when not known.
func (t *Table) TailCallPC(fn, to *Func) (pc uint64, after bool) {
	for _, cs := range t.CallSites(fn) {
		if cs.Tail && cs.Target == to {
			if cs.PC != 0 {
				return cs.PC, false
			}
			if cs.ReturnPC != 0 {
				return cs.ReturnPC, true
			}
		}
	}
	return 0, false
}
