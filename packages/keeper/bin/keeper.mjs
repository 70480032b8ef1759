#!/usr/bin/env node
// Runs the TypeScript entry point directly through tsx's loader: no build step between
// a checkout and a running process.
import { register } from 'tsx/esm/api'
register()
await import('../src/main.ts')
