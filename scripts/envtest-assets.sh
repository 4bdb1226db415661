#!/usr/bin/env bash
# Builds the control-plane binaries (kube-apiserver, kube-controller-manager,
# kube-scheduler) from the Go module proxy into an ignored folder, once per
# binary and version. setup-envtest's download host is not reachable on our
# machines, so we compile k8s.io/kubernetes ourselves; the logic is in Go
# (internal/assets, also `driftlab assets`), run here without compiling the
# rest of driftlab.
#
# Usage: scripts/envtest-assets.sh [NAME...]   # prints the assets dir on stdout
#   KUBEBUILDER_ASSETS=/path  -> binaries found there are used, not built;
#                                it is printed when it holds them all
#   K8S_VERSION=1.37.2        -> Kubernetes version to build
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
exec "${GO:-go}" run ./internal/assets/cmd/envtest-assets \
  -version "${K8S_VERSION}" -dir "${ROOT}/bin/k8s/${K8S_VERSION}" "$@"
