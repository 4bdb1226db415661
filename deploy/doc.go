// Package deploy holds example manifests for running driftlab on a cluster
// (sweep-job.yaml: a virtual-backend sweep split over the pods of an
// Indexed Job); its test checks that they decode strictly into their API
// types.
package deploy
