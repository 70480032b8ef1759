import { mkdir, mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { bundleIsFresh } from '../../entry/run.mjs'

/** A package folder with a bundle built from one source, as scripts/build.mjs leaves it. */
describe('bundleIsFresh', () => {
  let dir: string
  let pkg: URL
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apiary-entry-'))
    await mkdir(join(dir, 'pkg/dist'), { recursive: true })
    await mkdir(join(dir, 'pkg/src'))
    await writeFile(join(dir, 'pkg/src/main.ts'), 'export {}\n')
    await writeFile(join(dir, 'pkg/dist/main.mjs'), '\n')
    const mtimeMs = (await stat(join(dir, 'pkg/src/main.ts'))).mtimeMs
    await writeFile(join(dir, 'pkg/dist/inputs.json'), JSON.stringify({ root: '../', inputs: { 'pkg/src/main.ts': mtimeMs } }))
    pkg = pathToFileURL(join(dir, 'pkg/'))
  })
  afterEach(() => rm(dir, { recursive: true, force: true }))

  it('is fresh while every source has the mtime the build read', () => {
    expect(bundleIsFresh(pkg)).toBe(true)
  })
  it('is stale once a source changed, even to an older mtime', async () => {
    await utimes(join(dir, 'pkg/src/main.ts'), new Date(1000), new Date(1000))
    expect(bundleIsFresh(pkg)).toBe(false)
  })
  it('is stale when a source is gone, the list is missing or empty, or there is no bundle', async () => {
    await rm(join(dir, 'pkg/src/main.ts'))
    expect(bundleIsFresh(pkg)).toBe(false)
    await writeFile(join(dir, 'pkg/dist/inputs.json'), JSON.stringify({ root: '../', inputs: {} }))
    expect(bundleIsFresh(pkg)).toBe(false)
    await rm(join(dir, 'pkg/dist/inputs.json'))
    expect(bundleIsFresh(pkg)).toBe(false)
    await rm(join(dir, 'pkg/dist/main.mjs'))
    expect(bundleIsFresh(pkg)).toBe(false)
  })
})
