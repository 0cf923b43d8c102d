//go:build !unix

package symbols

import "os"

func mapFile(f *os.File, size int64) ([]byte, bool) { return nil, false }

func unmapFile(b []byte) {}

func mapFileWritable(f *os.File, size int64) ([]byte, bool) { return nil, false }
