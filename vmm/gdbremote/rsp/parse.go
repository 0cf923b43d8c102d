package rsp

import (
	"encoding/xml"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Features is a qSupported reply.
type Features map[string]string // name → "+", "-", "?" or a value

// ParseFeatures parses "PacketSize=1000;qXfer:features:read+;…".
func ParseFeatures(s string) Features {
	f := Features{}
	for _, item := range strings.Split(s, ";") {
		if item == "" {
			continue
		}
		if k, v, ok := splitOnce(item, '='); ok {
			f[k] = v
			continue
		}
		switch last := item[len(item)-1]; last {
		case '+', '-', '?':
			f[item[:len(item)-1]] = string(last)
		default:
			f[item] = "+"
		}
	}
	return f
}

// Has reports a "+" feature.
func (f Features) Has(name string) bool { return f[name] == "+" }

// PacketSize returns the stub's maximum packet size (hex in the reply).
func (f Features) PacketSize() int {
	if v, ok := f["PacketSize"]; ok {
		if n, err := strconv.ParseUint(v, 16, 32); err == nil && n > 16 {
			return int(n)
		}
	}
	return 4096
}

// StopKind is the letter of a stop reply.
type StopKind byte

// StopReply is a parsed stop-reply packet.
type StopReply struct {
	Kind    StopKind // 'T', 'S', 'W', 'X'
	Signal  int      // T/S: signal; W: exit status; X: signal
	Thread  string   // "thread:" value (may be "p1.2")
	Watch   string   // "watch", "rwatch", "awatch" or ""
	WatchAt uint64
	SWBreak bool
	HWBreak bool
	Regs    map[int]string // expedited registers (number → hex)
}

// ParseStopReply parses T05thread:p01.01;watch:100100;… and S/W/X forms.
func ParseStopReply(s string) (StopReply, error) {
	var r StopReply
	if len(s) < 3 {
		return r, fmt.Errorf("%w: stop reply %q", ErrMalformed, s)
	}
	r.Kind = StopKind(s[0])
	switch r.Kind {
	case 'T', 'S', 'W', 'X':
	default:
		return r, fmt.Errorf("%w: not a stop reply %q", ErrMalformed, s)
	}
	sig, err := strconv.ParseUint(s[1:3], 16, 8)
	if err != nil {
		return r, fmt.Errorf("%w: stop reply %q", ErrMalformed, s)
	}
	r.Signal = int(sig)
	if r.Kind != 'T' {
		return r, nil
	}
	for _, pair := range strings.Split(s[3:], ";") {
		if pair == "" {
			continue
		}
		k, v, ok := splitOnce(pair, ':')
		if !ok {
			continue
		}
		switch k {
		case "thread":
			r.Thread = v
		case "watch", "rwatch", "awatch":
			r.Watch = k
			if a, err := ParseHex(v); err == nil {
				r.WatchAt = a
			}
		case "swbreak":
			r.SWBreak = true
		case "hwbreak":
			r.HWBreak = true
		default:
			if n, err := strconv.ParseUint(k, 16, 16); err == nil {
				if r.Regs == nil {
					r.Regs = map[int]string{}
				}
				r.Regs[int(n)] = v
			}
		}
	}
	return r, nil
}

// ParseThreadList parses one qfThreadInfo/qsThreadInfo reply: "m1,2,3" or
// "l" (end). It returns the ids and whether the list continues.
func ParseThreadList(s string) ([]string, bool, error) {
	if s == "l" {
		return nil, false, nil
	}
	if !strings.HasPrefix(s, "m") {
		return nil, false, fmt.Errorf("%w: thread list %q", ErrMalformed, s)
	}
	var ids []string
	for _, id := range strings.Split(s[1:], ",") {
		if id != "" {
			ids = append(ids, id)
		}
	}
	return ids, true, nil
}

// ThreadNum extracts the thread number from "p1.2" (multiprocess) or "2".
func ThreadNum(id string) (int64, error) {
	if strings.HasPrefix(id, "p") {
		if _, t, ok := splitOnce(id[1:], '.'); ok {
			id = t
		}
	}
	v, err := strconv.ParseInt(id, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: thread id %q", ErrMalformed, id)
	}
	return v, nil
}

// Reg is one register of a target description.
type Reg struct {
	Name    string
	Bits    int
	Num     int // register number for p/P
	Offset  int // byte offset in the 'g' packet
	Type    string
	Feature string
}

// TargetDesc is a parsed target description.
type TargetDesc struct {
	Arch string
	Regs []Reg
}

// Size returns the byte length of a 'g' packet for this layout.
func (d *TargetDesc) Size() int {
	n := 0
	for _, r := range d.Regs {
		n += r.Bits / 8
	}
	return n
}

type xmlTarget struct {
	XMLName  xml.Name     `xml:"target"`
	Arch     string       `xml:"architecture"`
	Includes []xmlInclude `xml:"include"`
	Features []xmlFeature `xml:"feature"`
}

type xmlInclude struct {
	Href string `xml:"href,attr"`
}

type xmlFeature struct {
	Name     string       `xml:"name,attr"`
	Includes []xmlInclude `xml:"include"`
	Regs     []xmlReg     `xml:"reg"`
}

type xmlReg struct {
	Name    string `xml:"name,attr"`
	Bitsize string `xml:"bitsize,attr"`
	Regnum  string `xml:"regnum,attr"`
	Type    string `xml:"type,attr"`
}

// Bounds of a target description (x86-64 with AVX-512 has under 200
// registers; the widest, an AMX tile row set, is 8192 bits).
const (
	maxRegs    = 4096
	maxRegBits = 1 << 16
)

// ParseTargetDesc parses a target description, fetching included
// documents (xi:include href) through fetch. Comments are ignored, as XML
// says (QEMU keeps unused register names inside comments).
func ParseTargetDesc(doc []byte, fetch func(name string) ([]byte, error)) (*TargetDesc, error) {
	d := &TargetDesc{}
	num := 0
	var addFeature func(f xmlFeature) error
	addFeature = func(f xmlFeature) error {
		for _, r := range f.Regs {
			bits, err := strconv.Atoi(r.Bitsize)
			if err != nil || bits <= 0 || bits%8 != 0 || bits > maxRegBits {
				return fmt.Errorf("%w: register %q bitsize %q", ErrMalformed, r.Name, r.Bitsize)
			}
			if len(d.Regs) >= maxRegs {
				return fmt.Errorf("%w: more than %d registers", ErrMalformed, maxRegs)
			}
			if r.Regnum != "" {
				if n, err := strconv.Atoi(r.Regnum); err == nil {
					num = n
				}
			}
			d.Regs = append(d.Regs, Reg{Name: r.Name, Bits: bits, Num: num, Type: r.Type, Feature: f.Name})
			num++
		}
		return nil
	}
	var walk func(doc []byte, depth int) error
	walk = func(doc []byte, depth int) error {
		if depth > 8 {
			return fmt.Errorf("%w: includes nested too deep", ErrMalformed)
		}
		// An included document may be a <feature> or a <target>.
		var t xmlTarget
		if err := xml.Unmarshal(doc, &t); err == nil {
			if t.Arch != "" {
				d.Arch = t.Arch
			}
			for _, inc := range t.Includes {
				b, err := fetch(inc.Href)
				if err != nil {
					return fmt.Errorf("target description include %q: %w", inc.Href, err)
				}
				if err := walk(b, depth+1); err != nil {
					return err
				}
			}
			for _, f := range t.Features {
				if err := feature(f, fetch, walk, addFeature, depth); err != nil {
					return err
				}
			}
			return nil
		}
		var f xmlFeature
		if err := xml.Unmarshal(doc, &f); err != nil {
			return fmt.Errorf("%w: target description: %v", ErrMalformed, err)
		}
		return feature(f, fetch, walk, addFeature, depth)
	}
	if err := walk(doc, 0); err != nil {
		return nil, err
	}
	// 'g' order is register-number order.
	sort.SliceStable(d.Regs, func(i, j int) bool { return d.Regs[i].Num < d.Regs[j].Num })
	off := 0
	for i := range d.Regs {
		d.Regs[i].Offset = off
		off += d.Regs[i].Bits / 8
	}
	return d, nil
}

func feature(f xmlFeature, fetch func(string) ([]byte, error), walk func([]byte, int) error, add func(xmlFeature) error, depth int) error {
	for _, inc := range f.Includes {
		b, err := fetch(inc.Href)
		if err != nil {
			return fmt.Errorf("target description include %q: %w", inc.Href, err)
		}
		if err := walk(b, depth+1); err != nil {
			return err
		}
	}
	return add(f)
}
