#!/usr/bin/env node
// keeper runs from its bundle (dist/keeper.mjs, built by `pnpm build`, which `pnpm install`
// runs) when the bundle is newer than every source it was built from: plain JavaScript starts
// faster and lighter. Otherwise it runs the TypeScript sources through tsx, so an edit is never
// hidden behind a stale bundle.
import { readdirSync, statSync } from 'node:fs'

const pkg = new URL('..', import.meta.url)

function newest(dir) {
  let max = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const url = new URL(e.name + (e.isDirectory() ? '/' : ''), dir)
    max = Math.max(max, e.isDirectory() ? newest(url) : statSync(url).mtimeMs)
  }
  return max
}

let bundled = false
try {
  const built = statSync(new URL('dist/keeper.mjs', pkg)).mtimeMs
  bundled = built >= Math.max(newest(new URL('src/', pkg)), newest(new URL('../shared/src/', pkg)))
} catch {
  // No bundle yet: run the sources.
}
if (bundled) {
  await import('../dist/keeper.mjs')
} else {
  const { register } = await import('tsx/esm/api')
  register()
  await import('../src/main.ts')
}
