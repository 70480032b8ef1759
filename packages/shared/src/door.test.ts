import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'

/** What a module loads at run time once bundled: its external imports. */
async function externals(entry: string): Promise<string[]> {
  const r = await build({ entryPoints: [fileURLToPath(new URL(entry, import.meta.url))], bundle: true, write: false, platform: 'node', format: 'esm', packages: 'external', metafile: true, logLevel: 'silent' })
  return [...new Set(Object.values(r.metafile.outputs).flatMap((o) => o.imports.filter((i) => i.external).map((i) => i.path)))].sort()
}

describe('the contract door', () => {
  it('loads zod and node:crypto (the output digest) and no runtime: no bus, logger, HTTP client or YAML', async () => {
    expect(await externals('./index.ts')).toEqual(['node:crypto', 'zod'])
  })
  it('keeps each runtime behind its own subpath', async () => {
    expect(await externals('./bus/nats.ts')).toContain('@nats-io/transport-node')
    expect(await externals('./client/index.ts')).toEqual(expect.arrayContaining(['undici', 'eventsource-parser']))
    expect(await externals('./inventory/index.ts')).toContain('yaml')
    expect(await externals('./runtime/index.ts')).not.toContain('yaml')
  })
})
