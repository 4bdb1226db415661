// Package htmlreport writes report.html for a run directory (a bundle): a
// static page that works offline (no scripts or styles from elsewhere) with
// plots rendered by gonum.org/v1/plot to SVG and embedded in the page:
//
//   - latency over time, Jepsen style: each Pod-ready → status sample a
//     point at the moment the Pod became Ready, fault windows shaded, the
//     SLO drawn as a line, unresolved samples marked;
//   - latency percentiles inside each fault window against outside them;
//   - a timeline of workload operations, Pod readiness, status writes,
//     fault windows and invariant violations;
//
// and tables: the invariants, latency figures, each fault with its measured
// effect, the key etcd/runtime metrics, versions and the bundle's files.
//
// Everything is computed from the bundle's files (history.jsonl,
// summary.json, scenario.yaml, manifest.json), so `driftlab report DIR`
// regenerates the page of any run, including an interrupted one.
package htmlreport
