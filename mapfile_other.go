//go:build !unix

package main

import "os"

// mapFile reads the file where mmap is not available.
func mapFile(path string) (data []byte, release func(), err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return b, func() {}, nil
}
