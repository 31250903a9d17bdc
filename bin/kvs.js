#!/usr/bin/env node
// The kvs command: runs the compiled JavaScript in dist/ (`npm run build`, `make build`).
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('kvs: dist/cli/main.js is missing: build it first with "npm run build" (or "make build")');
  process.exit(2);
}
await import(main.href);
