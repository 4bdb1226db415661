// Package kubelet is driftlab's simulated kubelet. envtest runs no kubelet,
// so driftlab plays one: every member Pod it sees created is reported
// Running and Ready after a delay drawn from the scenario's seeded
// distribution, through the API server's pods/status subresource, as a real
// kubelet would.
//
// The delay of a Pod depends only on the seed, the Pod's name and how many
// Pods of that name came before it, not on the order events arrive in, so it
// is the same on every backend and every replay.
package kubelet
