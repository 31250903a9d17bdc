// Prints the test-vector section of docs/protocol.md from the encoders:
//   node --import tsx test/wire/print-vectors.ts
// Paste it over the section; protocol-doc.test.ts fails until doc and code agree.

import { formatHex, vectors } from './vectors.ts';

for (const v of vectors) {
  console.log(`<!-- vector: ${v.name} -->`);
  console.log(`**${v.name}** — ${v.title}`);
  console.log('```hex');
  console.log(formatHex(v.frame));
  console.log('```');
  console.log();
}
