// Package auditimport turns a kube-apiserver audit log into a driftlab
// scenario whose workload replays the incident's traffic.
//
// It reads audit.k8s.io/v1 Event objects, one JSON object per line, as
// kube-apiserver writes them with --audit-log-path (log format json). It
// keeps the events of stage ResponseComplete with a 2xx response code whose
// verb is create, update, patch or delete on KVClusters
// (kv.driftlab.io/kvclusters, not a subresource: status writes are the
// operator's own). Their request times, relative to the first one, become
// the "at" of an explicit workload operation (workload.operations):
//
//   - create → create with the object's spec.replicas;
//   - update or patch → scale when spec.replicas changed, and one annotate
//     per annotation added or changed (from the response object, so the
//     log must be recorded at level RequestResponse, or Request for
//     updates/patches whose body says it all);
//   - delete → delete.
//
// A cluster first seen being changed (it existed before the log began) is
// created at 0s with the replicas the first change shows. What cannot be
// replayed (an annotation removed, a change to other fields, other
// resources) is counted in Stats, never silently dropped.
//
// AuditPolicy is a policy that records exactly what the importer needs; the
// local backend writes it when asked to record an audit log
// (local.RunOptions.AuditLog, driftlab run --audit-log).
package auditimport
