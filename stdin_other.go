//go:build !unix

package main

import "os"

// polledStdin is standard input as it is.
func polledStdin() *os.File { return os.Stdin }
