import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface TempDir {
  path: string
  remove(): Promise<void>
}

/** A fresh directory under the system temp dir, unique per call. */
export async function tempDir(prefix: string): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), `apiary-${prefix}-`))
  return { path, remove: () => rm(path, { recursive: true, force: true }) }
}
