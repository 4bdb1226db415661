// Package bundle writes and reads run bundles: the self-contained directory
// a run leaves behind (the resolved scenario, history, latency log, the
// executed fault schedule, scraped metrics, versions, the summary, the logs)
// with a manifest of SHA-256 checksums.
//
// A bundle is written in two steps around the backend's run. Begin writes
// scenario.yaml (the scenario with its seed and every default filled in,
// which scenarios.Load reads back) and manifest.json with status
// "incomplete"; the backend then writes its files as it goes. Finish
// extracts faults.json and metrics.jsonl from the history and rewrites the
// manifest, atomically, with the final status (complete, failed or
// interrupted) and the size and checksum of every file. A process that dies
// in between leaves a readable bundle whose manifest still says
// "incomplete".
//
// Open verifies a bundle: a file whose size or checksum differs from the
// manifest (tampered or truncated), or a listed file that is missing, is an
// error naming the file. Compare sets a replayed run's summary against the
// recorded one.
package bundle
