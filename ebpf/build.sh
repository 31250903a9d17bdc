#!/usr/bin/env bash
# Builds ebpf/build/trace.bpf.o. vmlinux.h is generated from the running
# kernel's BTF into the build dir (never committed); CO-RE relocations make the
# object portable to other BTF-enabled kernels.
set -euo pipefail
cd "$(dirname "$0")"
out=build
mkdir -p "$out"

if [[ ! -r /sys/kernel/btf/vmlinux ]]; then
  echo "ebpf/build.sh: /sys/kernel/btf/vmlinux missing: kernel built without CONFIG_DEBUG_INFO_BTF" >&2
  exit 1
fi
for tool in clang bpftool; do
  command -v "$tool" >/dev/null || { echo "ebpf/build.sh: $tool not found (apt-get install clang bpftool)" >&2; exit 1; }
done

# Regenerate only when the kernel's BTF changed (new kernel) or it is missing.
if [[ ! -s $out/vmlinux.h || /sys/kernel/btf/vmlinux -nt $out/vmlinux.h ]]; then
  bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$out/vmlinux.h.tmp"
  mv "$out/vmlinux.h.tmp" "$out/vmlinux.h"
fi

# -g is required: libbpf needs the BTF it produces (maps, CO-RE).
clang -g -O2 -target bpf -Wall -Werror \
  -I"$out" -I. -c trace.bpf.c -o "$out/trace.bpf.o.tmp"
mv "$out/trace.bpf.o.tmp" "$out/trace.bpf.o"
echo "ebpf/build.sh: built ebpf/$out/trace.bpf.o"
