#!/usr/bin/env bash
# Builds native/build/Release/kvs_trace.node against the system libbpf.
# Node's headers come from /usr/include/node when present (no download).
set -euo pipefail
cd "$(dirname "$0")/.."
for hdr in /usr/include/bpf/libbpf.h /usr/include/gelf.h /usr/include/zlib.h; do
  [[ -r $hdr ]] || { echo "native/build.sh: $hdr missing (apt-get install libbpf-dev libelf-dev zlib1g-dev)" >&2; exit 1; }
done
gyp=node_modules/.bin/node-gyp
[[ -x $gyp ]] || { echo "native/build.sh: $gyp missing (npm ci first)" >&2; exit 1; }
args=()
if [[ -z ${npm_config_nodedir:-} && -r /usr/include/node/node_api.h ]]; then
  args+=(--nodedir=/usr)
fi
"$gyp" rebuild -C native "${args[@]}" "$@"
