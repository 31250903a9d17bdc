// The operator's own Prometheus metrics (text exposition format 0.0.4), served on /metrics.
import type { Phase } from './spec.ts';

const PHASES: Phase[] = ['Pending', 'Creating', 'Ready', 'Scaling', 'Resharding', 'Upgrading', 'Degraded'];

export class OperatorMetrics {
  leader = 0;
  reconciles = 0;
  errors = 0;
  watchErrors = 0;
  readonly actions = new Map<string, number>();
  readonly phase = new Map<string, Phase>();

  count(kind: string): void {
    this.actions.set(kind, (this.actions.get(kind) ?? 0) + 1);
  }

  render(): string {
    const lines = [
      '# HELP kvctl_leader 1 while this operator holds the Lease and acts.',
      '# TYPE kvctl_leader gauge',
      `kvctl_leader ${this.leader}`,
      '# HELP kvctl_reconciles_total Reconcile passes over one KVStore.',
      '# TYPE kvctl_reconciles_total counter',
      `kvctl_reconciles_total ${this.reconciles}`,
      '# HELP kvctl_reconcile_errors_total Reconcile passes that failed (retried with back-off).',
      '# TYPE kvctl_reconcile_errors_total counter',
      `kvctl_reconcile_errors_total ${this.errors}`,
      '# HELP kvctl_watch_errors_total Watches that failed and were restarted.',
      '# TYPE kvctl_watch_errors_total counter',
      `kvctl_watch_errors_total ${this.watchErrors}`,
      '# HELP kvctl_actions_total Actions carried out, by kind.',
      '# TYPE kvctl_actions_total counter',
      ...[...this.actions].sort().map(([k, n]) => `kvctl_actions_total{kind="${k}"} ${n}`),
      '# HELP kvctl_kvstore_phase 1 for the phase each KVStore is in.',
      '# TYPE kvctl_kvstore_phase gauge',
      ...[...this.phase].sort().flatMap(([name, ph]) => PHASES.map((p) => `kvctl_kvstore_phase{kvstore="${name}",phase="${p}"} ${p === ph ? 1 : 0}`)),
    ];
    return `${lines.join('\n')}\n`;
  }
}
