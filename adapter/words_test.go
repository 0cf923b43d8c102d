package adapter

import (
	"go/constant"
	"go/importer"
	"go/token"
	"go/types"
	"testing"

	"vmdap/session"
)

// TestSessionWordsTranslated: every value of the session's own
// vocabulary (stop reasons, output kinds, module changes, completion
// kinds, scopes) has its DAP word here, read from the session package's
// constants themselves, so a value added there without one fails.
func TestSessionWordsTranslated(t *testing.T) {
	pkg, err := importer.ForCompiler(token.NewFileSet(), "source", nil).Import("vmdap/session")
	if err != nil {
		t.Fatalf("type-checking the session package from source: %v", err)
	}
	has := map[string]func(v constant.Value) bool{
		"StopReason": func(v constant.Value) bool { _, ok := stopReasons[session.StopReason(u64(v))]; return ok },
		"OutputKind": func(v constant.Value) bool {
			_, ok := outputCategories[session.OutputKind(u64(v))]
			return ok
		},
		"ModuleChange": func(v constant.Value) bool {
			_, ok := moduleReasons[session.ModuleChange(u64(v))]
			return ok
		},
		"CompletionKind": func(v constant.Value) bool {
			_, ok := completionTypes[session.CompletionKind(u64(v))]
			return ok
		},
	}
	seen := map[string]int{}
	scope := pkg.Scope()
	for _, name := range scope.Names() {
		c, ok := scope.Lookup(name).(*types.Const)
		if !ok {
			continue
		}
		if n, ok := c.Type().(*types.Named); ok {
			if in := has[n.Obj().Name()]; in != nil {
				seen[n.Obj().Name()]++
				if !in(c.Val()) {
					t.Errorf("session.%s (a %s) has no DAP word in the adapter", name, n.Obj().Name())
				}
			}
		}
	}
	for typ := range has {
		if seen[typ] < 3 {
			t.Errorf("found %d constants of session.%s: the test no longer sees them", seen[typ], typ)
		}
	}
	// Scopes: every scope but Globals has a presentation hint.
	for _, sc := range []string{session.ScopeLocals, session.ScopeArguments, session.ScopeRegisters} {
		if scopeHints[sc] == "" {
			t.Errorf("scope %s has no presentation hint", sc)
		}
	}
}

func u64(v constant.Value) uint64 {
	n, _ := constant.Uint64Val(v)
	return n
}
