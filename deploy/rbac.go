package deploy

// RBAC of the reference operator, as controller-gen rbac markers; `make
// deploy-manifests` turns them into config/rbac/role.yaml (a ClusterRole
// named driftlab-operator). It manages KVClusters and their status, and
// creates and deletes member Pods (it also deletes the Pods of a deleted
// cluster itself, for clusters without a garbage collector).
//
// +kubebuilder:rbac:groups=kv.driftlab.io,resources=kvclusters,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=kv.driftlab.io,resources=kvclusters/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=kv.driftlab.io,resources=kvclusters/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create;delete
