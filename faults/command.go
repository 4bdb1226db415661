package faults

// Command is one instruction from the harness to an operator that takes
// them (the reference operator), a JSON line on its standard input. The
// harness uses it to switch runtime faults that must act inside the
// operator's process, and to sample its runtime.
type Command struct {
	// Cmd is one of the Cmd constants.
	Cmd string `json:"cmd"`
	// Entries and Rate configure gc-pressure-start.
	Entries int     `json:"entries,omitempty"`
	Rate    float64 `json:"rate,omitempty"`
	// Tag labels a runtime sample (for example "fault-start gc-assist-pressure").
	Tag string `json:"tag,omitempty"`
	// Failpoint and Term configure failpoint-enable and failpoint-disable:
	// an operator failpoint name (operator/failpoints.Names) and its term.
	Failpoint string `json:"failpoint,omitempty"`
	Term      string `json:"term,omitempty"`
}

// Command names.
const (
	CmdGCPressureStart = "gc-pressure-start"
	CmdGCPressureStop  = "gc-pressure-stop"
	CmdRuntimeSample   = "runtime-sample"
	// CmdFailpointEnable and CmdFailpointDisable switch one of the
	// operator's failpoints (a failpoint-enabled build only); each answers
	// with a runtime-metrics record tagged Tag: failpoint_hits, and Err when
	// it failed.
	CmdFailpointEnable  = "failpoint-enable"
	CmdFailpointDisable = "failpoint-disable"
)

// NeedsCommands is the skip reason of a fault that acts inside the
// operator's process for an operator that takes no harness commands.
const NeedsCommands = "needs an operator that takes driftlab's harness commands (the reference operator does; this one does not)"
