package adapter_test

import (
	"sync"
	"testing"

	"vmdap/adapter/dapschema"
)

// schemaCheck validates every message the adapter sends against the DAP
// schema and fails the test at its end if any broke it.
type schemaCheck struct {
	s   *dapschema.Schema
	mu  sync.Mutex // guards bad and n
	bad []string
	n   int
}

func newSchemaCheck(t testing.TB) *schemaCheck {
	t.Helper()
	s, err := dapschema.Load()
	if err != nil {
		t.Fatal(err)
	}
	chk := &schemaCheck{s: s}
	t.Cleanup(func() { // registered first: runs after the session's own cleanup
		chk.mu.Lock()
		defer chk.mu.Unlock()
		for _, b := range chk.bad {
			t.Errorf("the adapter sent an invalid DAP message: %s", b)
		}
	})
	return chk
}

func (chk *schemaCheck) log(dir string, raw []byte) {
	if dir != "<-" {
		return
	}
	err := chk.s.Validate(raw)
	chk.mu.Lock()
	defer chk.mu.Unlock()
	chk.n++
	if err != nil && len(chk.bad) < 20 {
		m := string(raw)
		if len(m) > 300 {
			m = m[:300] + "…"
		}
		chk.bad = append(chk.bad, err.Error()+"\n\t"+m)
	}
}
