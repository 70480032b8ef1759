import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { build, type PluginBuild } from 'esbuild'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../../../', import.meta.url))

/** The workspace sources a program's bundle takes in. */
async function inputs(pkg: string): Promise<string[]> {
  // Like scripts/build.mjs: workspace code bundled, third-party packages left out.
  const thirdParty = { name: 'third-party', setup: (b: PluginBuild) => b.onResolve({ filter: /^[^./]/ }, (a) => (a.path.startsWith('@apiary/') ? undefined : { path: a.path, external: true })) }
  const r = await build({ entryPoints: [`${root}packages/${pkg}/src/main.ts`], bundle: true, write: false, platform: 'node', format: 'esm', metafile: true, logLevel: 'silent', absWorkingDir: root, plugins: [thirdParty] })
  return Object.keys(r.metafile.inputs)
}

describe('the shell parser', () => {
  // shell-tree.ts loads mvdan-sh with require, on first use, which the build's own check of
  // undeclared imports cannot see.
  it.each(['queen', 'hive', 'worker', 'keeper'])('is declared by %s if its bundle classifies risk', async (pkg) => {
    const classifies = (await inputs(pkg)).includes('packages/shared/src/risk/shell-tree.ts')
    const deps = (JSON.parse(readFileSync(`${root}packages/${pkg}/package.json`, 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {}
    expect('mvdan-sh' in deps).toBe(classifies)
  })
})
