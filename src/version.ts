// The package's version, from package.json (the parent of both src/ and dist/). Kept in a
// module of its own so `kvs --version` loads nothing else.
import { createRequire } from 'node:module';

export const KVS_VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
