#!/usr/bin/env bash
# make kind-e2e: the manifests on a real Kubernetes (a one-node kind cluster), for machines with
# kind, docker and kubectl (the CI machines have neither a Docker engine nor a cluster: there the
# same rendered manifests run as podman containers, test/k8s/pods-e2e.test.ts).
#   1. builds the image under the tag the dev overlay uses, loads it into the kind cluster;
#   2. applies `kubectl kustomize kustomize/overlays/dev` and waits for every StatefulSet;
#   3. writes and reads a key through the client Service with the image's own `kvs` CLI;
#   4. restarts every StatefulSet (a rolling upgrade) and reads the key again.
# KIND_CLUSTER=name picks the cluster (created if missing, kept afterwards: delete it with
# `kind delete cluster --name kvs-e2e`).
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in kind docker kubectl; do
  command -v "$tool" >/dev/null || { echo "kind-e2e: $tool is not installed" >&2; exit 1; }
done
cluster=${KIND_CLUSTER:-kvs-e2e}
ctx=(--context "kind-$cluster")
# The image reference the dev overlay renders (kept in one place: the overlay).
image=$(kubectl kustomize kustomize/overlays/dev | sed -n 's/^ *image: //p' | sort -u)
[[ $(wc -l <<<"$image") == 1 ]] || { echo "kind-e2e: the dev overlay names several images: $image" >&2; exit 1; }

docker build -t "$image" -f Containerfile .
kind get clusters | grep -qx "$cluster" || kind create cluster --name "$cluster" --wait 120s
kind load docker-image "$image" --name "$cluster"

kubectl kustomize kustomize/overlays/dev | kubectl "${ctx[@]}" apply -f -
sets=(placement shard-0 shard-1 shard-2)
for s in "${sets[@]}"; do kubectl "${ctx[@]}" -n kvs rollout status "statefulset/$s" --timeout=300s; done

kvs() {
  kubectl "${ctx[@]}" -n kvs run "kvs-cli-$RANDOM" --rm -i --restart=Never --image "$image" --image-pull-policy=Never \
    -- "$@" --endpoints kvs.kvs.svc.cluster.local:7000
}
kvs put kind-e2e "$(date +%s)"
before=$(kvs get kind-e2e)

for s in "${sets[@]}"; do kubectl "${ctx[@]}" -n kvs rollout restart "statefulset/$s"; done
for s in "${sets[@]}"; do kubectl "${ctx[@]}" -n kvs rollout status "statefulset/$s" --timeout=600s; done
after=$(kvs get kind-e2e)
[[ $before == "$after" ]] || { echo "kind-e2e: read '$after' after the rolling restart, wrote '$before'" >&2; exit 1; }
echo "kind-e2e: the dev overlay serves on kind and kept its data through a rolling restart"
