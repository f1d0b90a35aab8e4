#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so no build step is needed.
import './register.mjs';
// Output piped into a program that stops reading (isoroot explain t.jsonl | head): stop quietly.
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
const { main } = await import('../harness/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
