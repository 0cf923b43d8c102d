module vmdap

go 1.26.8

require (
	github.com/sirupsen/logrus v1.10.2
	golang.org/x/arch v0.32.0
	golang.org/x/sys v0.49.0
)

require github.com/google/go-dap v0.12.0 // indirect
