// The packages as a user gets them: `npm pack`, install the tarball into an empty project, use it.
// sharded-kvs-client (packages/client) from .mjs, .cjs and TypeScript with a default `tsc --init`
// config, without the server's native dependencies; sharded-kvs (the repository root) with its
// `kvs` bin (compiled JavaScript: `make build` first) and its client exports; each package's README
// snippet runs as pasted (addresses aside) and ends by itself. Dependencies come from
// npm's cache (--prefer-offline; `npm ci` filled it) or the registry.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { TestCluster } from '../server/cluster.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const TSC = join(ROOT, 'node_modules/.bin/tsc');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const exec = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'kvs-packages-'));
const ENV = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };

async function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = ENV, timeout = 300_000): Promise<string> {
  try {
    return (await exec(cmd, args, { cwd, env, timeout, maxBuffer: 64 << 20 })).stdout;
  } catch (e) {
    const err = e as { message: string; stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
  }
}

/** Packs `dir` (its files already built; no lifecycle scripts) into tmp; the tarball and its file list. */
async function pack(dir: string): Promise<{ tarball: string; files: string[] }> {
  const out = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], dir);
  const [info] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
  return { tarball: join(tmp, info!.filename), files: info!.files.map((f) => f.path) };
}

/**
 * The first ```LANG block of a README, its addresses replaced by `endpoint`, written to `file` in
 * `app` and run: it must do its work and end by itself (an outside user ran the root README's
 * snippet verbatim and it never ended: it did not close its client, whose connections kept Node up).
 */
async function runReadmeSnippet(readme: string, lang: string, app: string, file: string, endpoint: string): Promise<string> {
  const block = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(readFileSync(readme, 'utf8'))?.[1];
  assert.ok(block, `${readme} has a \`\`\`${lang} block`);
  writeFileSync(join(app, file), `${block.replaceAll(/\[('127\.0\.0\.1:\d+'(, )?)+\]/g, JSON.stringify([endpoint]))}\nconsole.log('snippet ran');\n`);
  // Bounded well below the test's own limit: a snippet that keeps Node up fails here, named.
  return await run(process.execPath, [file], app, ENV, 30_000).catch((e: Error) => {
    throw new Error(`the ${lang} snippet of ${readme} failed, or did not end by itself within 30 s (a client left open?): ${e.message}`);
  });
}

/**
 * An empty ESM project with `tarball` installed, every dependency's install script skipped: npm 11
 * skips them unless the project's `allowScripts` lists them, so the packages must work without
 * (their native parts are prebuilt binaries; docs/packages.md). npm 10 would run them and hide it.
 */
async function project(name: string, tarball: string): Promise<string> {
  const dir = join(tmp, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, type: 'module' }));
  await run('npm', ['install', '--prefer-offline', '--ignore-scripts', tarball], dir);
  return dir;
}

describe('packages', () => {
  let cluster: TestCluster;
  let endpoint: string;
  before(async () => {
    cluster = await TestCluster.start({ replicas: 1, basePort: 25200 });
    endpoint = cluster.endpoints()[0]!;
  });
  after(async () => {
    await cluster?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('sharded-kvs-client installs without the server and works from .mjs, .cjs and .ts (default tsc --init)', async () => {
    // Built into a staging copy: the package's own prepack does the same into packages/client/dist.
    const stage = join(tmp, 'client-stage');
    mkdirSync(stage);
    for (const f of ['package.json', 'README.md', 'LICENSE']) copyFileSync(join(ROOT, 'packages/client', f), join(stage, f));
    await run(TSC, ['-p', join(ROOT, 'packages/client/tsconfig.json'), '--outDir', join(stage, 'dist')], ROOT);
    const manifest = JSON.parse(readFileSync(join(stage, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> };
    assert.equal(manifest.version, VERSION, 'the client package is versioned with the server');
    assert.deepEqual(Object.keys(manifest.dependencies), ['xxhash-wasm']);

    const { tarball, files } = await pack(stage);
    assert.ok(files.includes('dist/client/index.js') && files.includes('dist/client/index.d.ts'), files.join(' '));
    assert.ok(files.includes('LICENSE'), 'the Apache-2.0 text travels with the package');
    assert.deepEqual(
      files.filter((f) => /^dist\/(server|storage|protocol|cli)\//.test(f) || /\.(ts|map)$/.test(f.replace(/\.d\.ts$/, ''))),
      [],
      'no server modules, sources or maps',
    );

    const app = await project('client-app', tarball);
    assert.deepEqual(readdirSync(join(app, 'node_modules')).filter((d) => !d.startsWith('.')).sort(), ['sharded-kvs-client', 'xxhash-wasm']);

    writeFileSync(
      join(app, 'use.mjs'),
      `import { KvsClient, ShardedClient, KvsError } from 'sharded-kvs-client';
const kv = new KvsClient({ endpoints: [${JSON.stringify(endpoint)}] });
await kv.put('from-mjs', 'm');
console.log(new TextDecoder().decode(await kv.get('from-mjs')), typeof ShardedClient, typeof KvsError);
kv.close();\n`,
    );
    assert.equal(await run(process.execPath, ['use.mjs'], app), 'm function function\n');
    assert.equal(await runReadmeSnippet(join(ROOT, 'packages/client/README.md'), 'js', app, 'readme.mjs', endpoint), 'snippet ran\n');

    writeFileSync(
      join(app, 'use.cjs'),
      `const { KvsClient } = require('sharded-kvs-client');
const kv = new KvsClient({ endpoints: [${JSON.stringify(endpoint)}] });
kv.get('from-mjs').then((v) => { console.log(Buffer.from(v).toString()); kv.close(); });\n`,
    );
    assert.equal(await run(process.execPath, ['use.cjs'], app), 'm\n');

    writeFileSync(
      join(app, 'use.ts'),
      `import { KvsClient, KvsError, ShardedClient, type ClientOptions, type ConfigSource, type KeyValue } from 'sharded-kvs-client';
const options: ClientOptions = { endpoints: [${JSON.stringify(endpoint)}], timeoutMs: 10000 };
const kv = new KvsClient(options);
await kv.put('from-ts', 't');
const value: Uint8Array | null = await kv.get('from-ts');
const items: KeyValue[] = (await kv.scan('from-', 'from.', { limit: 10 })).items;
const source: ConfigSource | undefined = undefined; // the type of ShardedClientOptions.configSource is exported
void source;
// @ts-expect-error the declarations are real types (not any): a number is not a key
await kv.get(42).catch(() => null);
const e: KvsError = new KvsError('TIMEOUT', 'x');
console.log(value === null ? null : new TextDecoder().decode(value), items.length, typeof ShardedClient, e.code);
kv.close();\n`,
    );
    await run(TSC, ['--init'], app);
    await run(TSC, ['-p', '.'], app); // the generated config: strict, nodenext, skipLibCheck, types: []
    assert.equal(await run(process.execPath, ['use.js'], app), 't 2 function TIMEOUT\n');
    // Stricter: the shipped declarations themselves checked (they name Node's types: @types/node).
    const typesNode = (JSON.parse(readFileSync(join(ROOT, 'node_modules/@types/node/package.json'), 'utf8')) as { version: string }).version;
    await run('npm', ['install', '--prefer-offline', '-D', `@types/node@${typesNode}`], app);
    await run(TSC, ['-p', '.', '--skipLibCheck', 'false', '--types', 'node', '--noEmit'], app);
  });

  it('sharded-kvs: the installed kvs runs compiled JavaScript; the client is its export', async () => {
    assert.ok(existsSync(join(ROOT, 'dist/cli/main.js')), 'dist/ is built (make build / npm run build)');
    const { tarball, files } = await pack(ROOT);
    // No install script of our own: npm 11 would skip it (and warn) in every user's project.
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    assert.deepEqual(['preinstall', 'install', 'postinstall', 'prepare'].filter((s) => s in scripts), [], 'no install lifecycle script');
    for (const f of ['bin/kvs.js', 'dist/cli/main.js', 'dist/client/index.js', 'dist/client/index.d.ts', 'protos/kv.proto', 'package.json', 'LICENSE']) assert.ok(files.includes(f), `${f} is packed`);
    assert.deepEqual(
      files.filter((f) => /^(src|test|bench|native|ebpf|packages)\//.test(f) || f.endsWith('.map') || f.includes('tsbuildinfo') || f.endsWith('.built')),
      [],
      'no sources, tests, benchmarks, maps or build stamps',
    );
    const app = await project('full-app', tarball);
    assert.ok(!existsSync(join(app, 'node_modules/tsx')), 'tsx is not installed');
    const pointingAtMaps = (readdirSync(join(app, 'node_modules/sharded-kvs/dist'), { recursive: true }) as string[])
      .filter((f) => f.endsWith('.js') && readFileSync(join(app, 'node_modules/sharded-kvs/dist', f), 'utf8').includes('sourceMappingURL'));
    assert.deepEqual(pointingAtMaps, [], 'no shipped file names a source map that is not shipped');
    // LMDB's addon loads from the install, its install script skipped (the prebuilt binary).
    assert.equal(await run(process.execPath, ['--input-type=module', '-e', `const { open } = await import('lmdb'); const db = open({ path: ${JSON.stringify(join(app, 'lmdb-check'))} }); await db.put('k', 'v'); console.log(db.get('k')); await db.close();`], app), 'v\n');
    const kvs = join(app, 'node_modules/.bin/kvs');
    assert.equal(await run(kvs, ['--version'], app), `kvs ${VERSION}\n`);
    const env = { ...ENV, KVS_ENDPOINTS: endpoint };
    await run(kvs, ['put', 'from-installed-kvs', 'yes'], app, env);
    assert.equal(await run(kvs, ['get', 'from-installed-kvs'], app, env), 'yes');
    await assert.rejects(run(kvs, ['bench', '--help'], app), /not part of the installed package/);
    // The eBPF tracer is not shipped (nothing is compiled on install): `kvs trace` says so, and does
    // not tell the user to run `make trace-build`, which an installed package cannot do.
    const trace = run(kvs, ['trace', '--replicas', `1=${endpoint}`], app);
    await assert.rejects(trace, /installed package has none/);
    await assert.rejects(trace, (e: Error) => !/run: make trace-build/.test(e.message));
    // `kvs operator` instantiates the group template that ships next to dist/ (one source with kustomize/).
    for (const f of ['kustomize/base/group/statefulset.yaml', 'kustomize/base/kustomization.yaml', 'kustomize/base/kvs.yaml', 'kustomize/overlays/tracing/kustomization.yaml']) assert.ok(files.includes(f), `${f} is packed`);
    const template = join(app, 'node_modules/sharded-kvs/dist/operator/group-template.js');
    assert.equal(await run(process.execPath, ['--input-type=module', '-e', `const t = (await import(${JSON.stringify(pathToFileURL(template).href)})).loadGroupTemplate(); console.log(t.resources.map((r) => r.kind).sort().join(','), t.tracing.length > 0, 'kvs.yaml' in t.config.data)`], app), 'PodDisruptionBudget,Service,StatefulSet true true\n');

    writeFileSync(
      join(app, 'use.mjs'),
      `const root = await import('sharded-kvs');
const client = await import('sharded-kvs/client');
console.log(root.KvsClient === client.KvsClient, Object.keys(root).sort().join(','));
await import('sharded-kvs/wire').catch((e) => console.log(e.code));\n`,
    );
    assert.equal(await run(process.execPath, ['use.mjs'], app), 'true KvsClient,KvsError,ShardedClient\nERR_PACKAGE_PATH_NOT_EXPORTED\n');
    // The README's import, type-checked by plain `tsc --strict` (its default resolution, node10,
    // ignores `exports`: typesVersions maps the subpath). An outside test found it unresolved.
    writeFileSync(join(app, 'readme.ts'), `import { KvsClient } from 'sharded-kvs/client';\nnew KvsClient({ endpoints: ['127.0.0.1:7001'] }).close();\n`);
    for (const resolution of ['node10', 'nodenext']) {
      await run(TSC, ['--strict', '--noEmit', '--skipLibCheck', ...(resolution === 'nodenext' ? ['--module', 'nodenext'] : ['--module', 'commonjs', '--moduleResolution', 'node10']), 'readme.ts'], app);
    }
    // TypeScript compiling to CommonJS (a .cts file) takes the ESM package under nodenext, which
    // knows Node >= 20.19 require()s it (docs/packages.md: node16 refuses it, TS1479, by design).
    writeFileSync(join(app, 'use.cts'), `import { KvsClient, type KvsErrorCode } from 'sharded-kvs';\nconst code: KvsErrorCode = 'CLOSED';\nnew KvsClient({ endpoints: ['127.0.0.1:7001'] }).close();\nexport { code };\n`);
    await run(TSC, ['--strict', '--noEmit', '--skipLibCheck', '--module', 'nodenext', 'use.cts'], app);
    // Its usage snippet as a user pastes it (plain JavaScript as well) runs, against the test cluster.
    assert.equal(await runReadmeSnippet(join(ROOT, 'README.md'), 'ts', app, 'readme-snippet.mjs', endpoint), 'snippet ran\n');
  });
});
