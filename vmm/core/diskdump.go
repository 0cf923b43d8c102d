package core

import (
	"errors"
	"io"
)

// diskdumpMagic opens a compressed kdump (makedumpfile's format).
const diskdumpMagic = "KDUMP   "

func openDiskdump(r io.ReaderAt) (*dump, error) {
	return nil, errors.New("compressed kdump: not read yet")
}
