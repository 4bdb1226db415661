// Package truth turns committed object states into truth records, by the
// same rules on every backend: a member Pod appearing (pod-created),
// becoming Ready or not (pod-ready, pod-unready) and going away
// (pod-deleted); a KVCluster's spec (cluster-spec, on a new generation or
// replica count), its status (cluster-status, when what it claims changes)
// and its deletion (cluster-deleted). The local backend feeds it what its
// etcd watcher decodes, the virtual backend its model's commits.
package truth
