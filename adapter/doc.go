// Package adapter is vmdap's Debug Adapter Protocol layer: it reads DAP
// messages with go-dap's codec (plus the DAP 1.71 fields go-dap v0.12.0
// lacks, in dapext.go), dispatches each request to a handler that calls the
// session package, writes every response and event through one writer
// goroutine, maps session events to DAP events, keeps the per-stop handle
// maps (frames, variables, goto and step-in targets), answers vmdap's
// custom requests (custom.go: the extension's hex toggle), and owns the
// launch/attach configuration and its validation. It never imports a concrete backend: main passes in a
// Backends implementation.
package adapter
