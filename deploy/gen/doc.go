// Command gen writes deploy/config/operator.yaml, the reference operator's
// Namespace, ServiceAccount, ClusterRoleBinding and Deployment, from
// deploy.Operator. `make deploy-manifests` runs it; --stdout prints the
// manifests for another image or namespace instead.
package main
