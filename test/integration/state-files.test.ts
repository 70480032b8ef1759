import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TestCluster } from '../harness/index.ts'

/** Every file and directory under `dir`, with its mode. */
async function modes(dir: string): Promise<Array<{ path: string; dir: boolean; mode: string }>> {
  const found: Array<{ path: string; dir: boolean; mode: string }> = []
  for (const name of await readdir(dir, { recursive: true })) {
    const st = await stat(join(dir, name))
    found.push({ path: name, dir: st.isDirectory(), mode: (st.mode & 0o777).toString(8) })
  }
  return found
}

/**
 * The state a cluster leaves on disk (the job database and its WAL and shared-memory files, the
 * token, the audit log, each worker's journal and dedupe key) is its user's alone, under a umask
 * that would have left others able to read it.
 */
describe('state files', () => {
  let cluster: TestCluster
  let umask: number
  beforeAll(async () => {
    umask = process.umask(0o022)
    cluster = await TestCluster.start('memory')
    await cluster.addHive('default')
    await cluster.addWorker('web-1')
  })
  afterAll(async () => {
    await cluster?.stop()
    process.umask(umask)
  })

  it('are mode 0600 in directories of mode 0700, the job database’s -wal and -shm too', async () => {
    const { jobId } = await cluster.client.submit({ operation: { type: 'exec', argv: ['echo', 'hi'] }, targets: 'all' })
    await cluster.events(jobId)
    const found = await modes(cluster.dir.path)
    const names = found.map((f) => f.path)
    expect(names).toEqual(expect.arrayContaining(['queen.db', 'queen.db-wal', 'queen.db-shm', 'token', join('worker-web-1', 'dedupe.key'), join('worker-web-1', 'journal.jsonl')]))
    expect(found.filter((f) => f.dir && f.mode !== '700')).toEqual([])
    expect(found.filter((f) => !f.dir && f.mode !== '600')).toEqual([])
    expect(((await stat(cluster.dir.path)).mode & 0o777).toString(8)).toBe('700')
  })
})
