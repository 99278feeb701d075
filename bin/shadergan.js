#!/usr/bin/env node
// Runs the TypeScript CLI directly: tsx compiles each module on load, so no build step is needed.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
