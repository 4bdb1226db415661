// Package netproxy injects network faults into TCP connections with an
// in-process proxy built on github.com/Shopify/toxiproxy/v2 used as a library
// (no HTTP API, no toxiproxy server): the kernel on driftlab's machines has no
// netem, so driftlab puts a [Proxy] between kube-apiserver and etcd (and
// optionally between the operator and kube-apiserver) and changes its faults
// at run time. A proxy listens only on 127.0.0.1, forwards every accepted
// connection to one upstream address and applies faults per direction
// ([Upstream] is client-to-server data, [Downstream] server-to-client):
// toxiproxy's latency, bandwidth and reset_peer toxics, plus a custom
// "retransmit" toxic that models a lost TCP segment as a head-of-line stall of
// one retransmission timeout (RTO) per consecutive loss, the RTO starting at
// 200 ms and doubling up to 120 s as on Linux, drawn from a seeded PCG
// generator so a run is reproducible. A [BurstSchedule] adds bursty loss:
// seeded blackouts during which every retransmission is lost too, so the
// backed-off RTO freezes a connection for seconds, as a real outage does.
// [RetransmitModel] gives the expected
// per-chunk extra delay (mean and quantiles) so tests and reports can compare
// injected and measured delay.
package netproxy
