#!/usr/bin/env bash
# Builds the envtest control-plane binary (kube-apiserver) from the Go module
# proxy into an ignored folder, once. setup-envtest's download host is not
# reachable on our machines, so we compile k8s.io/kubernetes ourselves.
#
# Usage: scripts/envtest-assets.sh            # prints the assets dir on stdout
#   KUBEBUILDER_ASSETS=/path  -> used as-is when it holds kube-apiserver
#   K8S_VERSION=1.37.2        -> Kubernetes version to build
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${ROOT}/bin/k8s/${K8S_VERSION}"
log() { echo "envtest-assets: $*" >&2; }

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  if [[ -x "${KUBEBUILDER_ASSETS}/kube-apiserver" ]]; then
    log "using KUBEBUILDER_ASSETS=${KUBEBUILDER_ASSETS}"
    echo "${KUBEBUILDER_ASSETS}"
    exit 0
  fi
  log "KUBEBUILDER_ASSETS=${KUBEBUILDER_ASSETS} has no executable kube-apiserver; building our own"
fi

if [[ -x "${OUT}/kube-apiserver" && -f "${OUT}/VERSION" && "$(cat "${OUT}/VERSION")" == "v${K8S_VERSION}" ]]; then
  log "kube-apiserver v${K8S_VERSION} already built in ${OUT}"
  echo "${OUT}"
  exit 0
fi

log "building kube-apiserver v${K8S_VERSION} from the Go module proxy (one time, ~6 min on 2 cores)"
WORK="${ROOT}/bin/k8s/.build-${K8S_VERSION}"
rm -rf "${WORK}"
mkdir -p "${WORK}" "${OUT}"
cd "${WORK}"

# The staging repos are published as k8s.io/<name> v0.<minor>.<patch>.
STAGING_VERSION="v0.${K8S_VERSION#*.}"
GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" > dl.json
KMOD="$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p' dl.json)"
[[ -f "${KMOD}" ]] || { log "could not find go.mod of k8s.io/kubernetes@v${K8S_VERSION}"; exit 1; }

{
  echo "module driftlab.local/envtest-build"
  echo
  echo "go $(sed -n 's/^go \([0-9.]*\).*/\1/p' "${KMOD}")"
  echo
  echo "require k8s.io/kubernetes v${K8S_VERSION}"
  echo
  echo "replace ("
  # k8s.io/<name> => ./staging/src/k8s.io/<name>  ->  k8s.io/<name> => k8s.io/<name> vX
  grep -E '^[[:space:]]*k8s\.io/[A-Za-z0-9._-]+ => \./staging/' "${KMOD}" \
    | awk -v v="${STAGING_VERSION}" '{print "\t" $1 " => " $1 " " v}'
  echo ")"
} > go.mod
n=$(grep -c '=> k8s.io/' go.mod || true)
log "wrote throwaway go.mod with ${n} staging replacements"
cat > tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
GOFLAGS=-mod=mod go mod tidy >&2
CGO_ENABLED=0 go build -trimpath -o "${OUT}/kube-apiserver.tmp" \
  -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"${K8S_VERSION}")" \
  k8s.io/kubernetes/cmd/kube-apiserver >&2
mv "${OUT}/kube-apiserver.tmp" "${OUT}/kube-apiserver"
echo "v${K8S_VERSION}" > "${OUT}/VERSION"
cd "${ROOT}" && rm -rf "${WORK}"
log "built ${OUT}/kube-apiserver ($("${OUT}/kube-apiserver" --version 2>/dev/null || echo unknown))"
echo "${OUT}"
