// Package adapter is vmdap's Debug Adapter Protocol layer. Per client it
// runs three goroutines: a reader that reads DAP's base protocol itself
// (every header line, header and body bounded; a bad header is reported
// and skipped), checks each request against the DAP 1.71 JSON schema
// (dapschema) and queues it, answering cancel and disconnect at once; a
// worker that carries out the queued requests in order by calling the
// session package; and the only writer. Run requests hold the session's
// events back until their own response is out; exited and terminated go
// out exactly once each. The package translates between DAP and the
// session's own vocabulary (stop reasons, step granularity, lines and
// columns as the client counts them), keeps the id maps (frames,
// variables, goto and step-in targets; ids are never reused in a
// session), adds the DAP 1.71 fields go-dap v0.12.0 lacks (dapext.go),
// answers vmdap's custom requests (custom.go: the extension's hex
// toggle), and owns the launch/attach configuration and its validation.
// Capabilities: initialize offers the superset; once the target exists a
// capabilities event narrows it to what the target's accessors offer
// (session.Features), saying false or [] for what it withdraws.
// It never imports a concrete backend (main passes in a Backends
// implementation) nor the symbol layer under the session.
package adapter
