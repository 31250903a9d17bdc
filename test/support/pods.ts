// Runs rendered pod specs (pod-specs.ts) as podman containers, the way a kubelet would run them:
// the pod's image, args, environment, ports, ConfigMap files, data volume and security settings,
// reachable from the other pods under its Kubernetes DNS name (a network alias on a private podman
// network with DNS), its HTTP probes run by the harness. Also the faults Kubernetes and Chaos Mesh
// cause: stop with a grace period, kill, network disconnect, pause. Reusable: "run these pods".
//
// podman needs runc and explicit ulimits here (shared/notes/containers.md). Each pod gets a fixed IP
// on the network so that the test process (in the same network namespace as the bridge) reaches it
// at the same address after a restart, as a client reaches a pod through its Service.
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { PodSpec, ProbeSpec } from './pod-specs.ts';

const run = promisify(execFile);
export const PODMAN = ['podman', '--runtime', 'runc'];
const ULIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

export async function podman(args: string[], timeoutMs = 120_000): Promise<string> {
  try {
    const { stdout } = await run(PODMAN[0]!, [...PODMAN.slice(1), ...args], { timeout: timeoutMs, maxBuffer: 64 << 20 });
    return stdout;
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`podman ${args.slice(0, 3).join(' ')}: ${err.stderr?.trim() || err.message}`);
  }
}

/** Why containers cannot run here, or undefined when they can. */
export async function podmanSkipReason(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'container tests need root (rootful podman)';
  try {
    await podman(['version', '--format', '{{.Client.Version}}'], 20_000);
  } catch (e) {
    return `podman does not work here: ${(e as Error).message}`;
  }
  return undefined;
}

export interface PodHarnessOptions {
  /** Unique per test run: container, network and directory names start with it. */
  prefix: string;
  /** Host directory for the pods' volumes and config files. */
  workDir: string;
  /** The image every pod runs, replacing the manifest's image reference (set per pod on restart). */
  image: string;
  /** Third octet picker for the 10.x.y.0/24 subnet; default from the prefix. */
  subnet?: string;
}

interface RunningPod {
  spec: PodSpec;
  image: string;
  ip: string;
}

export class PodHarness {
  readonly network: string;
  private readonly pods = new Map<string, RunningPod>();
  private subnet = '';

  private constructor(
    readonly specs: PodSpec[],
    private readonly o: PodHarnessOptions,
  ) {
    this.network = `${o.prefix}-net`;
  }

  /** Creates the network (a free 10.x.y.0/24 with DNS) and the pods' directories; starts nothing. */
  static async create(specs: PodSpec[], o: PodHarnessOptions): Promise<PodHarness> {
    const h = new PodHarness(specs, o);
    await h.removeLeftovers();
    for (let attempt = 0; ; attempt++) {
      const subnet = o.subnet ?? `10.${100 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 250)}`;
      try {
        await podman(['network', 'create', '--subnet', `${subnet}.0/24`, h.network]);
        h.subnet = subnet;
        break;
      } catch (e) {
        if (attempt >= 10 || o.subnet) throw e; // subnet taken by another network: pick another
      }
    }
    specs.forEach((s, i) => h.pods.set(s.name, { spec: s, image: o.image, ip: `${h.subnet}.${10 + i}` }));
    mkdirSync(o.workDir, { recursive: true });
    return h;
  }

  container(pod: string): string {
    return `${this.o.prefix}-${pod}`;
  }

  ip(pod: string): string {
    return this.pod(pod).ip;
  }

  /** host:port of a named container port of a pod, as the test process reaches it. */
  address(pod: string, port: string): string {
    const p = this.pod(pod);
    const n = p.spec.ports[port];
    if (n === undefined) throw new Error(`pod ${pod} has no port named ${port}`);
    return `${p.ip}:${n}`;
  }

  spec(pod: string): PodSpec {
    return this.pod(pod).spec;
  }

  imageOf(pod: string): string {
    return this.pod(pod).image;
  }

  private pod(name: string): RunningPod {
    const p = this.pods.get(name);
    if (!p) throw new Error(`no pod ${name}`);
    return p;
  }

  /** `podman run` of one pod (its data volume is kept across runs, as a PVC is). */
  async start(name: string, image?: string): Promise<void> {
    const p = this.pod(name);
    if (image) p.image = image;
    const s = p.spec;
    const dir = join(this.o.workDir, s.name);
    // restartPolicy Always (a StatefulSet's pods): the kubelet restarts a container that exits.
    const args = ['run', '-d', '--restart', 'always', '--name', this.container(s.name), '--hostname', s.name, '--network', this.network, '--ip', p.ip, '--network-alias', s.dnsName, ...ULIMITS];
    args.push('--stop-timeout', String(s.terminationGracePeriodSeconds), '--security-opt', 'no-new-privileges');
    // The kubelet's resolv.conf for a ClusterFirst pod: the server takes the cluster domain from it.
    for (const d of s.dnsSearch) args.push('--dns-search', d);
    args.push('--dns-option', 'ndots:5');
    for (const [k, v] of Object.entries(s.labels)) args.push('--label', `${k}=${v}`);
    if (s.runAsUser !== undefined) args.push('--user', `${s.runAsUser}:${s.runAsGroup ?? s.runAsUser}`);
    if (s.fsGroup !== undefined) args.push('--group-add', String(s.fsGroup));
    if (s.readOnlyRootFilesystem) args.push('--read-only');
    for (const c of s.capDrop) args.push('--cap-drop', c);
    for (const c of s.capAdd) args.push('--cap-add', c);
    for (const m of s.dataMounts) {
      const host = join(dir, 'volumes', m.replaceAll('/', '_'));
      mkdirSync(host, { recursive: true });
      if (s.fsGroup !== undefined) applyFsGroup(host, s.fsGroup);
      args.push('-v', `${host}:${m}`);
    }
    for (const [m, files] of Object.entries(s.configFiles)) {
      const host = join(dir, 'config', m.replaceAll('/', '_'));
      mkdirSync(host, { recursive: true });
      for (const [f, text] of Object.entries(files)) writeFileSync(join(host, f), text);
      args.push('-v', `${host}:${m}:ro`);
    }
    for (const m of s.emptyDirs) args.push('--tmpfs', `${m}:rw,size=64m,mode=1777`);
    for (const [k, v] of Object.entries(s.env)) args.push('-e', `${k}=${v}`);
    args.push(p.image, ...s.args);
    await podman(args);
  }

  async startAll(): Promise<void> {
    for (const s of this.specs) await this.start(s.name);
  }

  /**
   * What the kubelet does on delete: SIGTERM, wait up to the grace period, SIGKILL; then remove.
   * Returns how it ended and the container's last logs (gone once it is removed).
   */
  async stop(name: string): Promise<{ exitCode: number; seconds: number; exitSeconds: number; logs: string }> {
    const s = this.pod(name).spec;
    const t0 = performance.now();
    const wall0 = Date.now();
    await podman(['stop', '-t', String(s.terminationGracePeriodSeconds), this.container(name)], (s.terminationGracePeriodSeconds + 30) * 1000);
    const seconds = (performance.now() - t0) / 1000;
    const [code, finished] = (await podman(['inspect', '-f', '{{.State.ExitCode}} {{.State.FinishedAt.UnixMilli}}', this.container(name)])).trim().split(' ');
    const logs = await this.logs(name);
    await podman(['rm', '-f', this.container(name)]);
    // seconds: the whole `podman stop`; exitSeconds: from the signal to the process's exit.
    return { exitCode: Number(code), seconds, exitSeconds: (Number(finished) - wall0) / 1000, logs };
  }

  /** A new spec for a pod (an overlay applied): used from its next start, on the same volume and IP. */
  respec(name: string, spec: PodSpec): void {
    const p = this.pod(name);
    if (spec.name !== name) throw new Error(`spec of ${spec.name} given for pod ${name}`);
    p.spec = spec;
  }

  /** Chaos Mesh pod-kill: SIGKILL, the container removed (the StatefulSet recreates it). */
  async kill(name: string): Promise<void> {
    await podman(['rm', '-f', '-t', '0', this.container(name)]);
  }

  /**
   * A frozen process (a long GC pause, a stopped VM): SIGSTOP, which even a container's PID 1 cannot
   * ignore. Not `podman pause`: the cgroup freezer is unavailable here (cgroups in hybrid mode).
   */
  async pause(name: string): Promise<void> {
    await podman(['kill', '--signal', 'STOP', this.container(name)]);
  }

  async unpause(name: string): Promise<void> {
    await podman(['kill', '--signal', 'CONT', this.container(name)]);
  }

  /** Cuts the pod off the network (every other pod and the clients): a partition. */
  async disconnect(name: string): Promise<void> {
    await podman(['network', 'disconnect', this.network, this.container(name)]);
  }

  async connect(name: string): Promise<void> {
    const p = this.pod(name);
    await podman(['network', 'connect', '--ip', p.ip, '--alias', p.spec.dnsName, this.network, this.container(name)]);
  }

  async logs(name: string): Promise<string> {
    const { stdout, stderr } = await run(PODMAN[0]!, [...PODMAN.slice(1), 'logs', this.container(name)], { maxBuffer: 64 << 20 }).catch((e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? '' }));
    return stdout + stderr;
  }

  /** One HTTP probe as the kubelet runs it: success is a status in 200..399 within the timeout. */
  async probe(name: string, which: 'startupProbe' | 'readinessProbe' | 'livenessProbe'): Promise<boolean> {
    const p = this.pod(name);
    const pr: ProbeSpec | undefined = p.spec[which];
    if (!pr) return true;
    try {
      const r = await fetch(`http://${p.ip}:${pr.port}${pr.path}`, { signal: AbortSignal.timeout(pr.timeoutSeconds * 1000) });
      await r.body?.cancel();
      return r.status >= 200 && r.status < 400;
    } catch {
      return false;
    }
  }

  /**
   * Runs the startup probe until it passes (failing the pod after its failureThreshold), then the
   * readiness probe until it passes: when the kubelet would mark the pod Ready.
   */
  async waitReady(name: string, boundMs = 180_000): Promise<void> {
    const p = this.pod(name);
    const until = performance.now() + boundMs;
    for (const which of ['startupProbe', 'readinessProbe'] as const) {
      const pr = p.spec[which];
      let failures = 0;
      while (!(await this.probe(name, which))) {
        failures++;
        if (which === 'startupProbe' && pr && failures >= pr.failureThreshold) throw new Error(`${name}: startup probe failed ${failures} times (the kubelet would restart it)\n${await this.logs(name)}`);
        if (performance.now() > until) throw new Error(`${name}: not ${which === 'startupProbe' ? 'started' : 'ready'} within ${boundMs} ms\n${(await this.logs(name)).slice(-3000)}`);
        await new Promise((r) => setTimeout(r, Math.min((pr?.periodSeconds ?? 1) * 1000, 1000)));
      }
    }
  }

  async ready(name: string): Promise<boolean> {
    return this.probe(name, 'readinessProbe');
  }

  /** Removes every container, the network and the work directory. */
  async destroy(): Promise<void> {
    await this.removeLeftovers();
    rmSync(this.o.workDir, { recursive: true, force: true });
  }

  private async removeLeftovers(): Promise<void> {
    const names = (await podman(['ps', '-a', '--format', '{{.Names}}'])).split('\n').filter((n) => n.startsWith(`${this.o.prefix}-`));
    if (names.length > 0) await podman(['rm', '-f', '-t', '0', ...names]);
    await podman(['network', 'rm', '-f', this.network]).catch(() => undefined);
  }
}

/**
 * What the kubelet does to a volume for a pod's fsGroup: every file group-owned by it and
 * group-read-writable, directories setgid so new files inherit the group. A pod that changes user
 * (the tracing overlay runs as uid 0 without CAP_DAC_OVERRIDE) still opens the data it finds.
 */
function applyFsGroup(path: string, gid: number): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return;
  chownSync(path, st.uid, gid);
  chmodSync(path, (st.mode & 0o7777) | (st.isDirectory() ? 0o2070 : 0o060));
  if (st.isDirectory()) for (const f of readdirSync(path)) applyFsGroup(join(path, f), gid);
}
