import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, type Proc, runBin, startBin, type TempDir, tempDir } from '../harness/index.ts'
import { fanoutScenario } from './scenario.ts'

/** The same scenario on `keeper dev`: the embedded cluster in one process, state on disk. */
describe('keeper dev: the embedded cluster', () => {
  let dir: TempDir
  let dev: Proc
  let port = 0
  const env = () => ({ XDG_STATE_HOME: dir.path, APIARY_STATE_DIR: '' })

  const startDev = async () => {
    dev = startBin('keeper', ['dev', '--port', String(port), '--heartbeat', '500ms'], env())
    await dev.waitFor(/apiary embedded cluster: queen on/)
  }

  beforeAll(async () => {
    dir = await tempDir('dev')
    port = await freePort()
    await startDev()
  })
  afterAll(async () => {
    await dev?.stop()
    await dir?.remove()
  })

  it('keeps its state under the XDG state directory', async () => {
    const { stat } = await import('node:fs/promises')
    const st = await stat(join(dir.path, 'apiary', 'token'))
    expect(st.mode & 0o777).toBe(0o600)
  })

  it('fans uname -n out through keeper run and keeps the job across a restart', async () => {
    await fanoutScenario({
      queenUrl: () => `http://127.0.0.1:${port}`,
      tokenFile: join(dir.path, 'apiary', 'token'),
      env: env(),
      nodes: ['local-1', 'local-2', 'local-3'],
      async restartQueen() {
        expect(await dev.stop()).toBe(0)
        await startDev()
      },
    })
  })

  it('runs one command on a throw-away cluster with keeper dev run', async () => {
    const r = await runBin('keeper', ['dev', '--workers', '2', 'run', '--', 'echo', 'one-shot'], env())
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('all 2 identical\n── 2 nodes ok: local-1, local-2\n   one-shot\n')
  })
})
