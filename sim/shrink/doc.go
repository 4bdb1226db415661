// Package shrink minimises a failing virtual-backend run: given a scenario
// and a seed whose run fails an invariant, it searches for a smaller
// scenario — fewer and shorter faults, a smaller workload — whose run, with
// the same seed, still fails the same invariant, in the manner of delta
// debugging (Zeller's ddmin) and of the shrinkers of property-based testing
// tools.
//
// The search is greedy and bounded. Reduction passes run in a fixed order,
// biggest reductions first: drop faults (ddmin over the fault list: all of
// them, then halves, quarters, …, single faults), shorten the workload
// (to a quarter, a half, three quarters; fault windows past the new end
// are clipped, scaled with it, or moved earlier by the length cut), fewer
// operations when the workload is an explicit workload.operations list
// (ddmin, never to none), and for a generated workload fewer clusters, no
// deletes, no annotations or a lower annotation rate, no scaling or fewer
// scale steps, smaller replica ranges; then shorter fault windows (keep
// the first or the second half, trim a quarter from either end; a window
// that ends sooner or starts later is the move), and last, a generated
// workload becomes the explicit list of the operations its seed generated
// (the same run), after which single operations can be dropped without the
// seed regenerating, and so shifting, all the others. Each candidate is run once; a candidate whose run
// still fails the target invariant replaces the current scenario, anything
// else (it passes, fails only another invariant, fails the target
// invariant for another reason, or the run errors) is dropped. "For another
// reason" is judged on the invariant's detail (Kinds): with object names
// and numbers masked, the candidate's failure must share a clause with the
// original one, so that a latency failure "p99 1432.6ms > 1s" cannot shrink
// into "no Pod became Ready: nothing was measured". The passes repeat until a whole round changes nothing or the run
// budget is spent, so the result is 1-minimal with respect to these
// reductions when the budget allows.
//
// Every candidate goes through scenarios.Encode and scenarios.Parse before
// it runs, so the scenario that failed is exactly the one the YAML file
// holds, and a reduction that cannot be written (a value that loading would
// replace by a default) is never tried. The workload is regenerated from
// the seed for each candidate (workload.Generate): the seed stays, the
// operations follow from the smaller workload settings. The search is
// deterministic: the same scenario and seed shrink to the same result.
package shrink
