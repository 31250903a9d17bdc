// Reads the effective capabilities the eBPF capture needs from /proc/self/status.
import { readFileSync } from 'node:fs';

export const CAP_NET_ADMIN = 12;
export const CAP_SYS_ADMIN = 21;
export const CAP_BPF = 39;

export interface CaptureCaps {
  /** CAP_BPF, or CAP_SYS_ADMIN which implied it before Linux 5.8. */
  bpf: boolean;
  /** tc attach and loading classifier programs. */
  netAdmin: boolean;
  /** Lets a run inspect (and so remove) classic filters a crashed run left. */
  sysAdmin: boolean;
}

/** Parses the CapEff line of a /proc/<pid>/status text; undefined if absent. */
export function parseCapEff(status: string): bigint | undefined {
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(status);
  return m?.[1] === undefined ? undefined : BigInt(`0x${m[1]}`);
}

export function capsFromMask(mask: bigint): CaptureCaps {
  const has = (bit: number) => ((mask >> BigInt(bit)) & 1n) === 1n;
  return { bpf: has(CAP_BPF) || has(CAP_SYS_ADMIN), netAdmin: has(CAP_NET_ADMIN), sysAdmin: has(CAP_SYS_ADMIN) };
}

/** Why this process cannot capture, or undefined when it can. */
export function missingCapsReason(statusPath = '/proc/self/status'): string | undefined {
  let status: string;
  try {
    status = readFileSync(statusPath, 'utf8');
  } catch (err) {
    return `cannot read ${statusPath}: ${(err as Error).message}`;
  }
  const mask = parseCapEff(status);
  if (mask === undefined) return `no CapEff line in ${statusPath}`;
  const caps = capsFromMask(mask);
  const missing = [...(caps.bpf ? [] : ['CAP_BPF']), ...(caps.netAdmin ? [] : ['CAP_NET_ADMIN'])];
  return missing.length === 0 ? undefined : `missing ${missing.join(' and ')} (CapEff ${mask.toString(16)})`;
}
