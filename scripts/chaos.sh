#!/usr/bin/env bash
# make chaos SCENARIO=... : run a driftlab scenario on a kind cluster with
# Chaos Mesh. Creates (or reuses) the kind cluster of deploy/kind.yaml,
# installs Chaos Mesh with helm, builds and loads the driftlab image, deploys
# the reference operator (deploy/config), exports the scenario's faults as
# Chaos Mesh objects (driftlab chaos export) and runs the scenario with
# `driftlab run --backend cluster`, which creates those objects when the
# workload starts and checks the invariants.
#
# DRY_RUN=1 prints every command and every object it would apply, and runs
# nothing but the local build and export it needs to print them.
# Where docker (a running engine), helm or kubectl is missing, it stops at
# once and says which and how to get it. kind needs no install: it runs with
# `go run sigs.k8s.io/kind@KIND_VERSION`.
set -euo pipefail
cd "$(dirname "$0")/.."

SCENARIO=${SCENARIO:-scenarios/baseline.yaml}
DRY_RUN=${DRY_RUN:-}
GO=${GO:-go}
DOCKER=${DOCKER:-docker}
HELM=${HELM:-helm}
KUBECTL=${KUBECTL:-kubectl}
KIND_VERSION=${KIND_VERSION:-v0.33.0}
CHAOS_MESH_VERSION=${CHAOS_MESH_VERSION:-2.7.2}
CLUSTER=${CLUSTER:-driftlab}
IMAGE=${IMAGE:-driftlab:dev}
MEMBER_IMAGE=registry.local/driftlab/kv-member:sim # operator/controller.MemberImage
PAUSE_IMAGE=registry.k8s.io/pause:3.10
DRIFTLAB_BIN=${DRIFTLAB_BIN:-bin/driftlab}
name=$(basename "$SCENARIO" .yaml)
OUT=${OUT:-runs/chaos-$name}
KUBECONFIG_FILE=$OUT/kubeconfig
KIND=("$GO" run "sigs.k8s.io/kind@$KIND_VERSION")

say() { echo "make chaos: $*" >&2; }

# run prints a command and, unless this is a dry run, runs it.
run() {
	echo "+ $*"
	if [[ -z $DRY_RUN ]]; then "$@"; fi
}

# show prints an object file the run would apply.
show() {
	echo "# --- would apply: $1"
	cat "$1"
}

preflight() {
	local missing=()
	if ! command -v "$DOCKER" >/dev/null 2>&1; then
		missing+=("docker: not installed. Install Docker Engine (https://docs.docker.com/engine/install/) and start it; kind runs its nodes as docker containers.")
	elif ! "$DOCKER" info >/dev/null 2>&1; then
		missing+=("docker: the client is there but no engine answers (\`docker info\` failed). Start the Docker daemon (systemctl start docker) or point DOCKER_HOST at one; kind needs a running engine.")
	fi
	if ! command -v "$HELM" >/dev/null 2>&1; then
		missing+=("helm: not installed. Install Helm 3 (https://helm.sh/docs/intro/install/); it installs Chaos Mesh $CHAOS_MESH_VERSION.")
	fi
	if ! command -v "$KUBECTL" >/dev/null 2>&1; then
		missing+=("kubectl: not installed. Install it (https://kubernetes.io/docs/tasks/tools/); it deploys the operator.")
	fi
	if ! command -v "$GO" >/dev/null 2>&1; then
		missing+=("go: not installed; it builds driftlab and runs kind (go run sigs.k8s.io/kind@$KIND_VERSION).")
	fi
	if ((${#missing[@]} > 0)); then
		say "cannot run on this machine:"
		for m in "${missing[@]}"; do say "  - $m"; done
		say "nothing was changed. \`make chaos DRY_RUN=1\` prints the whole plan without them."
		exit 2
	fi
}

if [[ -z $DRY_RUN ]]; then
	preflight
else
	say "dry run: printing the commands and objects; nothing is created"
fi

# Local steps (also in a dry run: the export is what it prints).
echo "+ $GO build -o $DRIFTLAB_BIN ./cmd/driftlab"
"$GO" build -o "$DRIFTLAB_BIN" ./cmd/driftlab
mkdir -p "$OUT"
echo "+ $DRIFTLAB_BIN chaos export --image $IMAGE $SCENARIO > $OUT/chaos.yaml"
"$DRIFTLAB_BIN" chaos export --image "$IMAGE" "$SCENARIO" >"$OUT/chaos.yaml"
echo "+ $GO run ./deploy/gen --image $IMAGE --stdout > $OUT/operator.yaml"
"$GO" run ./deploy/gen --image "$IMAGE" --stdout >"$OUT/operator.yaml"

# The cluster.
if [[ -n $DRY_RUN ]] || ! "${KIND[@]}" get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
	run "${KIND[@]}" create cluster --name "$CLUSTER" --config deploy/kind.yaml --kubeconfig "$KUBECONFIG_FILE" --wait 5m
else
	run "${KIND[@]}" export kubeconfig --name "$CLUSTER" --kubeconfig "$KUBECONFIG_FILE"
fi

# Images: driftlab (operator, watchstorm Job) and the member Pods' image,
# which no registry serves: a pause image under that name, so that the
# real kubelets run member Pods and make them Ready.
run "$DOCKER" build -f deploy/Dockerfile -t "$IMAGE" .
run "$DOCKER" pull "$PAUSE_IMAGE"
run "$DOCKER" tag "$PAUSE_IMAGE" "$MEMBER_IMAGE"
run "${KIND[@]}" load docker-image --name "$CLUSTER" "$IMAGE" "$MEMBER_IMAGE"

# Chaos Mesh, pinned.
run "$HELM" repo add chaos-mesh https://charts.chaos-mesh.org --force-update
run "$HELM" upgrade --install chaos-mesh chaos-mesh/chaos-mesh --version "$CHAOS_MESH_VERSION" \
	--kubeconfig "$KUBECONFIG_FILE" --namespace chaos-mesh --create-namespace \
	--set chaosDaemon.runtime=containerd --set chaosDaemon.socketPath=/run/containerd/containerd.sock \
	--set dashboard.create=false --wait --timeout 10m

# The operator.
for f in deploy/config/crd/*.yaml deploy/config/rbac/*.yaml "$OUT/operator.yaml"; do
	[[ -n $DRY_RUN ]] && show "$f"
	run "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" apply -f "$f"
done
run "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" -n driftlab-system rollout status deployment/driftlab-operator --timeout 5m

# Faults that act inside the operator (gc-assist-pressure's heap growth):
# the export's OPERATOR-ARGS lines become operator flags. Adding them rolls
# the operator out again just before the workload, so their "after" counts
# from about the workload's start (within the rollout's few seconds).
while read -r _ _ arg; do
	run "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" -n driftlab-system patch deployment/driftlab-operator --type json \
		-p "[{\"op\":\"add\",\"path\":\"/spec/template/spec/containers/0/command/-\",\"value\":\"$arg\"}]"
	run "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" -n driftlab-system rollout status deployment/driftlab-operator --timeout 5m
done < <(grep '^# OPERATOR-ARGS ' "$OUT/chaos.yaml" || true)

# The scenario: the workload through the API server, the exported chaos
# created when it starts, the invariants from the apiserver watch.
[[ -n $DRY_RUN ]] && show "$OUT/chaos.yaml"
echo "# the workload's KVClusters are created by driftlab run at their times (ops.jsonl in $OUT/run)"
status=0
run "$DRIFTLAB_BIN" run --backend cluster --kubeconfig "$KUBECONFIG_FILE" --operator external \
	--simulated-kubelet=false --chaos "$OUT/chaos.yaml" --out "$OUT/run" "$SCENARIO" || status=$?
if [[ -z $DRY_RUN ]]; then
	say "results in $OUT/run (the cluster $CLUSTER stays; delete it with: ${KIND[*]} delete cluster --name $CLUSTER)"
fi
exit "$status"
