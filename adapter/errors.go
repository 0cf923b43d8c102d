package adapter

// Error ids in DAP error responses: one table, unique (a test checks).
const (
	errMalformed      = 1001
	errUnsupported    = 1002
	errInternal       = 1003
	errNotLaunched    = 1004
	errRunning        = 1005
	errLaunch         = 2001
	errAttach         = 2002
	errBadConfig      = 2003
	errBreakpoints    = 3001
	errStep           = 3002
	errStack          = 3003
	errVariables      = 3004
	errEvaluate       = 3005
	errSetVariable    = 3006
	errMemory         = 3007
	errDisassemble    = 3008
	errDataBreakpoint = 3009
	errExceptionInfo  = 3010
	errPause          = 3011
	errContinue       = 3012
	errGoto           = 3013
	errBadArguments   = 1006
	errBusy           = 1007
	errCancelled      = 1008
	errExited         = 1009
	errNotConfigured  = 1010
)

var errorIDs = []int{errMalformed, errUnsupported, errInternal, errNotLaunched, errRunning, errLaunch, errAttach,
	errBadConfig, errBreakpoints, errStep, errStack, errVariables, errEvaluate, errSetVariable, errMemory,
	errDisassemble, errDataBreakpoint, errExceptionInfo, errPause, errContinue, errGoto, errBadArguments, errBusy,
	errCancelled, errExited, errNotConfigured}
