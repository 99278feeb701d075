#!/usr/bin/env node
// Runs the TypeScript CLI directly: tsx compiles each module on load, so no build step is needed.
import { register } from 'tsx/esm/api';

register();
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const { main } = await import('../src/cli/main.ts');
const code = await main(process.argv.slice(2));
// Dawn's threads can keep the event loop alive after the work is done.
process.exit(code);
