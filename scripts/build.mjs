#!/usr/bin/env node
// Bundles keeper into packages/keeper/dist/keeper.mjs: plain JavaScript, so the CLI starts
// without a TypeScript loader (less memory, faster start). Third-party packages stay
// external; the embedded cluster (keeper dev) is loaded from the sources on demand.
import { build } from 'esbuild'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const deps = (pkg) => Object.keys(JSON.parse(readFileSync(`${root}packages/${pkg}/package.json`, 'utf8')).dependencies ?? {})
const external = [...new Set([...deps('shared'), ...deps('keeper'), 'tsx', 'tsx/*'])].filter((d) => !d.startsWith('@apiary/'))

await build({
  entryPoints: [`${root}packages/keeper/src/main.ts`],
  outfile: `${root}packages/keeper/dist/keeper.mjs`,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external,
  sourcemap: 'linked',
  logLevel: 'warning',
  banner: { js: '// Built by scripts/build.mjs from packages/keeper/src; do not edit.' },
})
