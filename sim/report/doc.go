// Package report turns a checked run into its summary: summary.json for
// programs, a short text summary for people, and latency.hlog, the
// HdrHistogram interval log that standard HdrHistogram plotters read.
package report
