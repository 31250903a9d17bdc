// Partitions on loopback with iptables (root): the rules that cut one process's replica links.
// Its listening ports are dropped by the caller's multiport rules; the connections it dialed carry
// only an ephemeral local port, found with `ss` and dropped one by one. Used by the door fault test
// and the chaos soak (bench/chaos.ts).
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export function iptables(...args: string[]): void {
  execFileSync('iptables', ['-w', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

/**
 * Adds to `chain` a DROP rule each way for every connection process `pid` has open to one of
 * `peerPorts` and not yet in `dropped` (local:peer), which it then records. Call it again while the
 * cut lasts: a process redials.
 */
export async function dropDialed(chain: string, pid: number | undefined, peerPorts: ReadonlySet<number>, dropped: Set<string>): Promise<void> {
  if (pid === undefined) return;
  const { stdout } = await run('ss', ['-tanpH']);
  for (const line of stdout.split('\n')) {
    if (!line.includes(`pid=${pid},`)) continue;
    const cols = line.trim().split(/\s+/);
    const local = portOf(cols[3] ?? '');
    const peer = portOf(cols[4] ?? '');
    if (!peerPorts.has(peer) || dropped.has(`${local}:${peer}`)) continue;
    dropped.add(`${local}:${peer}`);
    // Both ports: the local one alone could be another program's port elsewhere on loopback.
    iptables('-A', chain, '-p', 'tcp', '--sport', String(local), '--dport', String(peer), '-j', 'DROP');
    iptables('-A', chain, '-p', 'tcp', '--sport', String(peer), '--dport', String(local), '-j', 'DROP');
  }
}

/** Adds to `chain` DROP rules for every packet to or from these (listening) ports. */
export function dropPorts(chain: string, ports: readonly number[]): void {
  const list = ports.join(',');
  iptables('-A', chain, '-p', 'tcp', '-m', 'multiport', '--dports', list, '-j', 'DROP');
  iptables('-A', chain, '-p', 'tcp', '-m', 'multiport', '--sports', list, '-j', 'DROP');
}

/** A chain of our own, jumped to from OUTPUT (loopback traffic passes OUTPUT only), empty. */
export function createChain(chain: string): void {
  try {
    iptables('-N', chain);
  } catch {
    iptables('-F', chain); // left over from a killed run
  }
  try {
    iptables('-C', 'OUTPUT', '-j', chain);
  } catch {
    iptables('-I', 'OUTPUT', '-j', chain);
  }
}

/** Removes the chain and its jump, whatever is left of them (also after a failure). */
export function removeChain(chain: string): void {
  for (const args of [['-D', 'OUTPUT', '-j', chain], ['-F', chain], ['-X', chain]]) {
    try {
      iptables(...args);
    } catch {
      // not there
    }
  }
}
