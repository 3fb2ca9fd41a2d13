#!/usr/bin/env node
// Runs the TypeScript entry points through tsx, so there is no build step between a checkout and a
// working command. `vaquero agent` is the site agent's process; everything else is the CLI.
import { register } from 'tsx/esm/api';

register();
const [command, ...args] = process.argv.slice(2);
if (command === 'agent') {
  const { main } = await import('../agent/main.ts');
  process.exitCode = await main(args);
} else {
  const { main } = await import('../cli/main.ts');
  process.exitCode = await main(process.argv.slice(2));
}
