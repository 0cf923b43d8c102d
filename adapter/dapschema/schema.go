// Package dapschema checks Debug Adapter Protocol messages against the
// protocol's own JSON schema: debugAdapterProtocol.json of DAP 1.71, from
// github.com/microsoft/debug-adapter-protocol (MIT licence, © Microsoft
// Corporation), embedded unchanged. The adapter checks every incoming
// request with it (a request missing a required argument, or with one of
// the wrong type or out of its range, is refused before it is carried
// out), and the tests check every message the adapter sends.
//
// The validator knows the JSON-schema keywords the DAP schema uses: $ref,
// allOf, oneOf, type (one or a list), properties, required, items,
// additionalProperties, enum (closed; "_enum" is DAP's open enum and
// allows anything), minimum, maximum, and format int32, uint32 and uint64
// as integer ranges.
package dapschema

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"sync"
)

//go:embed debugAdapterProtocol.json
var specJSON []byte

// Version is the DAP version of the embedded schema.
const Version = "1.71"

// node is one schema object.
type node struct {
	Ref                  string           `json:"$ref"`
	Type                 json.RawMessage  `json:"type"`
	Properties           map[string]*node `json:"properties"`
	Required             []string         `json:"required"`
	AllOf                []*node          `json:"allOf"`
	OneOf                []*node          `json:"oneOf"`
	Enum                 []any            `json:"enum"`
	Items                *node            `json:"items"`
	Minimum              *json.Number     `json:"minimum"`
	Maximum              *json.Number     `json:"maximum"`
	Format               string           `json:"format"`
	AdditionalProperties json.RawMessage  `json:"additionalProperties"`

	types []string // Type decoded
	addl  *node    // AdditionalProperties when it is a schema
	noAdd bool     // additionalProperties: false
}

// Schema is the parsed protocol schema.
type Schema struct {
	defs map[string]*node
}

var (
	once   sync.Once
	loaded *Schema
	errLd  error
)

// Load parses the embedded schema (once).
func Load() (*Schema, error) {
	once.Do(func() { loaded, errLd = parse(specJSON) })
	return loaded, errLd
}

func parse(b []byte) (*Schema, error) {
	var doc struct {
		Definitions map[string]*node `json:"definitions"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		return nil, fmt.Errorf("dapschema: %w", err)
	}
	s := &Schema{defs: doc.Definitions}
	for _, n := range s.defs {
		if err := s.prepare(n); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Schema) prepare(n *node) error {
	if n == nil {
		return nil
	}
	if len(n.Type) > 0 {
		var one string
		if json.Unmarshal(n.Type, &one) == nil {
			n.types = []string{one}
		} else if err := json.Unmarshal(n.Type, &n.types); err != nil {
			return fmt.Errorf("dapschema: bad type %s", n.Type)
		}
	}
	if len(n.AdditionalProperties) > 0 {
		var b bool
		if json.Unmarshal(n.AdditionalProperties, &b) == nil {
			n.noAdd = !b
		} else {
			n.addl = &node{}
			d := json.NewDecoder(bytes.NewReader(n.AdditionalProperties))
			d.UseNumber()
			if err := d.Decode(n.addl); err != nil {
				return fmt.Errorf("dapschema: additionalProperties: %w", err)
			}
			if err := s.prepare(n.addl); err != nil {
				return err
			}
		}
	}
	if n.Ref != "" {
		if _, ok := s.defs[strings.TrimPrefix(n.Ref, "#/definitions/")]; !ok {
			return fmt.Errorf("dapschema: dangling $ref %s", n.Ref)
		}
	}
	for _, p := range n.Properties {
		if err := s.prepare(p); err != nil {
			return err
		}
	}
	for _, l := range [][]*node{n.AllOf, n.OneOf} {
		for _, c := range l {
			if err := s.prepare(c); err != nil {
				return err
			}
		}
	}
	return s.prepare(n.Items)
}

// Has reports whether the schema defines name (e.g. "StackTraceRequest").
func (s *Schema) Has(name string) bool { _, ok := s.defs[name]; return ok }

// Error is a message that breaks the schema: Path names the offending
// part ("arguments.threadId"), Def the definition checked.
type Error struct {
	Def  string
	Path string
	Msg  string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s: %s", e.Def, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Def, e.Path, e.Msg)
}

// Definition names the schema definition a message must satisfy: the
// request, response or event of its command or event name (ErrorResponse
// for a failed response), or the base Request, Response or Event for a
// command the protocol does not define (an adapter's custom request).
func (s *Schema) Definition(msg map[string]any) string {
	typ, _ := msg["type"].(string)
	switch typ {
	case "request":
		if c, _ := msg["command"].(string); s.Has(upper(c) + "Request") {
			return upper(c) + "Request"
		}
		return "Request"
	case "response":
		if ok, _ := msg["success"].(bool); !ok {
			return "ErrorResponse"
		}
		if c, _ := msg["command"].(string); s.Has(upper(c) + "Response") {
			return upper(c) + "Response"
		}
		return "Response"
	case "event":
		if e, _ := msg["event"].(string); s.Has(upper(e) + "Event") {
			return upper(e) + "Event"
		}
		return "Event"
	}
	return "ProtocolMessage"
}

func upper(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// Validate checks one message (the JSON body of a DAP base-protocol
// message) against the definition its type and command or event name
// select.
func (s *Schema) Validate(raw []byte) error {
	v, err := decode(raw)
	if err != nil {
		return &Error{Def: "ProtocolMessage", Msg: "not JSON: " + err.Error()}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return &Error{Def: "ProtocolMessage", Msg: "not a JSON object"}
	}
	return s.ValidateAs(s.Definition(m), m)
}

// ValidateAs checks a decoded value (from Decode) against a named
// definition.
func (s *Schema) ValidateAs(def string, v any) error {
	n, ok := s.defs[def]
	if !ok {
		return &Error{Def: def, Msg: "no such definition"}
	}
	if msg := s.check(n, v, ""); msg != nil {
		msg.Def = def
		return msg
	}
	return nil
}

// Decode parses JSON keeping numbers exact (for integer ranges).
func Decode(raw []byte) (any, error) { return decode(raw) }

func decode(raw []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("data after the JSON value")
	}
	return v, nil
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func (s *Schema) check(n *node, v any, path string) *Error {
	if n.Ref != "" {
		if e := s.check(s.defs[strings.TrimPrefix(n.Ref, "#/definitions/")], v, path); e != nil {
			return e
		}
	}
	for _, c := range n.AllOf {
		if e := s.check(c, v, path); e != nil {
			return e
		}
	}
	if len(n.OneOf) > 0 {
		matched := 0
		var first *Error
		for _, c := range n.OneOf {
			if e := s.check(c, v, path); e == nil {
				matched++
			} else if first == nil {
				first = e
			}
		}
		if matched == 0 {
			return first
		}
	}
	if len(n.types) > 0 {
		if !typeOK(n.types, v) {
			return &Error{Path: path, Msg: fmt.Sprintf("is %s, want %s", typeName(v), strings.Join(n.types, " or "))}
		}
	}
	if len(n.Enum) > 0 && !inEnum(n.Enum, v) {
		return &Error{Path: path, Msg: fmt.Sprintf("%s is not one of %s", show(v), enumText(n.Enum))}
	}
	if num, ok := v.(json.Number); ok {
		if e := checkRange(n, num, path); e != nil {
			return e
		}
	}
	switch x := v.(type) {
	case map[string]any:
		for _, r := range n.Required {
			if _, ok := x[r]; !ok {
				return &Error{Path: join(path, r), Msg: "is required"}
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p, ok := n.Properties[k]
			switch {
			case ok:
				if e := s.check(p, x[k], join(path, k)); e != nil {
					return e
				}
			case n.addl != nil:
				if e := s.check(n.addl, x[k], join(path, k)); e != nil {
					return e
				}
			case n.noAdd:
				return &Error{Path: join(path, k), Msg: "is not allowed"}
			}
		}
	case []any:
		if n.Items != nil {
			for i, e := range x {
				if err := s.check(n.Items, e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func typeOK(types []string, v any) bool {
	for _, t := range types {
		switch t {
		case "object":
			if _, ok := v.(map[string]any); ok {
				return true
			}
		case "array":
			if _, ok := v.([]any); ok {
				return true
			}
		case "string":
			if _, ok := v.(string); ok {
				return true
			}
		case "boolean":
			if _, ok := v.(bool); ok {
				return true
			}
		case "null":
			if v == nil {
				return true
			}
		case "number":
			if _, ok := v.(json.Number); ok {
				return true
			}
		case "integer":
			if n, ok := v.(json.Number); ok && isInteger(n) {
				return true
			}
		}
	}
	return false
}

func isInteger(n json.Number) bool {
	_, ok := new(big.Int).SetString(n.String(), 10)
	return ok
}

func typeName(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	case json.Number:
		if isInteger(x) {
			return "the integer " + x.String()
		}
		return "the number " + x.String()
	}
	return fmt.Sprintf("%T", v)
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil || len(b) > 60 {
		return typeName(v)
	}
	return string(b)
}

func inEnum(enum []any, v any) bool {
	for _, e := range enum {
		if e == v {
			return true
		}
	}
	return false
}

func enumText(enum []any) string {
	var p []string
	for _, e := range enum {
		p = append(p, show(e))
	}
	return strings.Join(p, ", ")
}

// formatRange is the range an integer format allows.
var formatRange = map[string][2]*big.Int{
	"int32":  {big.NewInt(-1 << 31), big.NewInt(1<<31 - 1)},
	"uint32": {big.NewInt(0), big.NewInt(1<<32 - 1)},
	"uint64": {big.NewInt(0), new(big.Int).SetUint64(1<<64 - 1)},
	"int64":  {big.NewInt(-1 << 63), big.NewInt(1<<63 - 1)},
}

func checkRange(n *node, num json.Number, path string) *Error {
	v, ok := new(big.Int).SetString(num.String(), 10)
	if !ok {
		f, _, err := big.ParseFloat(num.String(), 10, 128, big.ToNearestEven)
		if err != nil {
			return &Error{Path: path, Msg: "is not a number"}
		}
		v, _ = f.Int(nil)
	}
	lo, hi := bound(n.Minimum), bound(n.Maximum)
	if r, ok := formatRange[n.Format]; ok {
		if lo == nil || lo.Cmp(r[0]) < 0 {
			lo = r[0]
		}
		if hi == nil || hi.Cmp(r[1]) > 0 {
			hi = r[1]
		}
	}
	if lo != nil && v.Cmp(lo) < 0 {
		return &Error{Path: path, Msg: fmt.Sprintf("is %s, below its minimum %s", num, lo)}
	}
	if hi != nil && v.Cmp(hi) > 0 {
		return &Error{Path: path, Msg: fmt.Sprintf("is %s, above its maximum %s", num, hi)}
	}
	return nil
}

func bound(n *json.Number) *big.Int {
	if n == nil {
		return nil
	}
	v, ok := new(big.Int).SetString(n.String(), 10)
	if !ok {
		return nil
	}
	return v
}
