// Package promread reads metrics from the process's default Prometheus
// registry, where an embedded etcd registers its own: driftlab reads them
// in-process, without scraping over the network.
package promread
