#!/usr/bin/env bash
# Makes the local stand-in for the Containerfile's base image `node:20-bookworm-slim` when no
# registry can be reached (CI, these machines): a minimal Debian 12 root file system made with
# debootstrap, imported into podman, plus this machine's Node 20 (node, npm, headers for node-gyp).
# Idempotent: an image already present under the tag is kept. Usage: test/k8s/base-image.sh [TAG]
set -euo pipefail
tag=${1:-localhost/node:20-bookworm-slim}
debian=localhost/debian:bookworm-min
podman=(podman --runtime runc)
mirror=${KVS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=${KVS_BASE_WORK:-/var/tmp/kvs-base-image}

if "${podman[@]}" image exists "$tag"; then exit 0; fi
mkdir -p "$work"
if ! "${podman[@]}" image exists "$debian"; then
  rm -rf "$work/rootfs"
  # ~100 s and ~200 MB: minbase is dpkg, apt and the essential packages only.
  debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  tar -C "$work/rootfs" -c . | "${podman[@]}" import - "$debian" >/dev/null
  rm -rf "$work/rootfs"
fi

node=$(command -v node)
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
ctx="$work/node-context"
rm -rf "$ctx" && mkdir -p "$ctx/usr/local/bin" "$ctx/usr/local/lib/node_modules" "$ctx/usr/local/include"
cp "$node" "$ctx/usr/local/bin/node"
cp -a "$npm_dir" "$ctx/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/usr/local/bin/npx"
if [[ -d /usr/include/node ]]; then cp -a /usr/include/node "$ctx/usr/local/include/node"; fi
# This machine's extra certificate authorities (e.g. a TLS-inspecting egress proxy) so that npm in
# the build reaches the registry as it does here; Node reads the bundle through NODE_EXTRA_CA_CERTS.
mkdir -p "$ctx/usr/local/share/ca-certificates" "$ctx/etc/ssl/certs"
cp /usr/local/share/ca-certificates/*.crt "$ctx/usr/local/share/ca-certificates/" 2>/dev/null || true
cp /etc/ssl/certs/ca-certificates.crt "$ctx/etc/ssl/certs/ca-certificates.crt" 2>/dev/null || true
# The official image has a user "node" (uid 1000); the Containerfile runs as it.
cat > "$ctx/Containerfile" <<'CF'
FROM localhost/debian:bookworm-min
COPY usr/ /usr/
COPY etc/ /etc/
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node && node --version
CF
"${podman[@]}" build --pull=never --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 -t "$tag" "$ctx" >/dev/null
rm -rf "$ctx"
echo "base-image.sh: built $tag"
