// Package embedetcd starts a single-member embedded etcd on free 127.0.0.1
// ports: the one recipe the local backend and the tests share.
package embedetcd
