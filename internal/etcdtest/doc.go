// Package etcdtest starts a single-member embedded etcd on 127.0.0.1 for
// tests, and reads etcd's in-process Prometheus metrics.
package etcdtest
