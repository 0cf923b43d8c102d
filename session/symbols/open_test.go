package symbols_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vmdap/session/symbols"
	"vmdap/vmm/vmmtest"
)

// TestLoadCancelled: an open whose context is done stops with its error.
func TestLoadCancelled(t *testing.T) {
	g := vmmtest.BuildExample(t, "kernel")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := symbols.Load(g.Path, "", symbols.WithContext(ctx)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Load with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := symbols.Load(g.Path, "", symbols.WithContext(context.Background())); err != nil {
		t.Fatal(err)
	}
}

// TestLoadRefusesNonFiles: a FIFO, a directory or a device is refused with
// a clear error, and a file that is not ELF never has its bytes quoted.
func TestLoadRefusesNonFiles(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{dir, "/dev/zero"} {
		if _, err := symbols.Load(p, ""); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Load(%s): %v", p, err)
		}
	}
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("s3cr3t-bytes-here"), 0o600)
	_, err := symbols.Load(secret, "")
	if err == nil || strings.Contains(err.Error(), "s3cr") || strings.Contains(err.Error(), "73 33") {
		t.Errorf("Load(non-ELF): %v", err)
	}
}
