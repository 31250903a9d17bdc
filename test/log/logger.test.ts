import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, defaultLogFormat, isLogFormat, isLogLevel, type LoggerOptions } from '../../src/log/logger.ts';

function capture(opts: Omit<LoggerOptions, 'write' | 'now'>): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const log = createLogger({ ...opts, write: (l) => lines.push(l), now: () => Date.UTC(2026, 11, 4, 21, 0, 0, 123) });
  return { lines, log };
}

describe('logger', () => {
  it('json: one object per line with ts, level, group, replica, msg and the fields', () => {
    const { lines, log } = capture({ format: 'json', bindings: { group: 1, replica: 102 } });
    log.info('raft role changed', { role: 'leader', term: 5 });
    assert.equal(lines.length, 1);
    assert.ok(lines[0]!.endsWith('}\n'));
    assert.equal(lines[0]!.indexOf('\n'), lines[0]!.length - 1, 'exactly one newline, at the end');
    assert.deepEqual(JSON.parse(lines[0]!), { ts: '2026-12-04T21:00:00.123Z', level: 'info', group: 1, replica: 102, msg: 'raft role changed', role: 'leader', term: 5 });
    assert.deepEqual(Object.keys(JSON.parse(lines[0]!)).slice(0, 5), ['ts', 'level', 'group', 'replica', 'msg']);
  });

  it('json: newlines, quotes, errors and bigints in a message or a field stay on one valid line', () => {
    const { lines, log } = capture({ format: 'json', bindings: { group: 0, replica: 1 } });
    log.error('bad\nthing "quoted"', { error: new Error('disk\nfull'), n: 12n, missing: undefined, nested: { a: [1, 'x'] } });
    assert.equal(lines[0]!.split('\n').length, 2);
    const o = JSON.parse(lines[0]!);
    assert.equal(o.msg, 'bad\nthing "quoted"');
    assert.equal(o.error, 'disk\nfull');
    assert.equal(o.n, '12');
    assert.equal(o.missing, null);
    assert.deepEqual(o.nested, { a: [1, 'x'] });
  });

  it('a field cannot overwrite ts, level, msg or a bound group/replica', () => {
    const { lines, log } = capture({ format: 'json', bindings: { group: 3, replica: 7 } });
    log.warn('m', { ts: 'x', level: 'y', msg: 'z', group: 99, replica: 98, other: 1 });
    assert.deepEqual(JSON.parse(lines[0]!), { ts: '2026-12-04T21:00:00.123Z', level: 'warn', group: 3, replica: 7, msg: 'm', other: 1 });
  });

  it('levels below the threshold are dropped', () => {
    const { lines, log } = capture({ format: 'json', level: 'warn' });
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    assert.deepEqual(lines.map((l) => JSON.parse(l).level), ['warn', 'error']);
    const all = capture({ format: 'json', level: 'debug' });
    all.log.debug('d');
    assert.equal(all.lines.length, 1);
    const dflt = capture({ format: 'json' });
    dflt.log.debug('d');
    dflt.log.info('i');
    assert.equal(dflt.lines.length, 1, 'info by default');
  });

  it('child loggers add bindings', () => {
    const { lines, log } = capture({ format: 'json', bindings: { group: 0, replica: 1 } });
    log.child({ door: 'http' }).info('listening', { address: '127.0.0.1:1' });
    assert.deepEqual(JSON.parse(lines[0]!), { ts: '2026-12-04T21:00:00.123Z', level: 'info', group: 0, replica: 1, door: 'http', msg: 'listening', address: '127.0.0.1:1' });
  });

  it('text: time, level, g/r, message and key=value fields (quoted when needed), one line', () => {
    const { lines, log } = capture({ format: 'text', bindings: { group: 1, replica: 102 } });
    log.info('raft role changed', { role: 'leader', term: 5, why: 'two words' });
    log.error('line\nbreak', { error: new Error('x') });
    assert.deepEqual(lines, [
      '2026-12-04T21:00:00.123Z INFO  g1 r102 raft role changed role=leader term=5 why="two words"\n',
      '2026-12-04T21:00:00.123Z ERROR g1 r102 line\\nbreak error=x\n',
    ]);
  });

  it('format default: text on a terminal, json otherwise; validators', () => {
    assert.equal(defaultLogFormat(true), 'text');
    assert.equal(defaultLogFormat(false), 'json');
    assert.equal(defaultLogFormat(undefined), 'json');
    assert.ok(isLogLevel('debug') && isLogLevel('error') && !isLogLevel('trace') && !isLogLevel(undefined));
    assert.ok(isLogFormat('json') && isLogFormat('text') && !isLogFormat('JSON'));
  });
});
