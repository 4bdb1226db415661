// Package bugs is the table of seeded bugs the reference operator can be
// built to show. Every bug is off by default and switched on by name, from
// the operator's --bug flag or a scenario's operator.bugs list. driftlab's
// own tests and its detection matrix (sim/matrix, `driftlab matrix`) switch
// them on to prove that some scenario and invariant fails when the operator
// is wrong (the negative control, a mutation score for driftlab itself).
// The behaviour behind each name lives in package controller, behind
// Set.On.
package bugs
