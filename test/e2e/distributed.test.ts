import { join } from 'node:path'
import { afterAll, beforeAll, describe, it } from 'vitest'
import { readSecretFile } from '@apiary/shared/runtime'
import { createJobClient } from '@apiary/shared/client'
import { type NatsServer, type Proc, startBin, startNats, type TempDir, tempDir, waitUntil } from '../harness/index.ts'
import { fanoutScenario } from './scenario.ts'

/** nats-server, queen, one hive and three workers, each its own OS process. */
describe('distributed: every role its own process over NATS', () => {
  let nats: NatsServer
  let dir: TempDir
  let queen: Proc
  let queenUrl = ''
  const others: Proc[] = []
  const nodes = ['e2e-1', 'e2e-2', 'e2e-3']

  const startQueenProc = async () => {
    queen = startBin('apiary-queen', ['--nats', nats.url, '--port', '0', '--state-dir', dir.path])
    const line = await queen.waitFor(/queen listening/)
    queenUrl = (JSON.parse(line) as { url: string }).url
  }

  beforeAll(async () => {
    nats = await startNats()
    dir = await tempDir('e2e')
    await startQueenProc()
    others.push(startBin('apiary-hive', ['--nats', nats.url, '--region', 'eu', '--heartbeat', '200ms']))
    for (const n of nodes) {
      others.push(startBin('apiary-worker', ['--nats', nats.url, '--region', 'eu', '--node-id', n, '--label', 'role=e2e', '--heartbeat', '200ms']))
    }
    await Promise.all(others.map((p) => p.waitFor(/ready/)))
    const client = createJobClient({ url: queenUrl, token: await readSecretFile(join(dir.path, 'token'), 'token') })
    await waitUntil(async () => (await client.nodes()).filter((n) => n.online).length === 3, 'three workers online')
    await client.close()
  })

  afterAll(async () => {
    await Promise.all([queen?.stop(), ...others.map((p) => p.stop())])
    await nats?.stop()
    await dir?.remove()
  })

  it('fans uname -n out through keeper run and keeps the job across a queen restart', async () => {
    await fanoutScenario({
      queenUrl: () => queenUrl,
      tokenFile: join(dir.path, 'token'),
      env: {},
      nodes,
      async restartQueen() {
        await queen.stop()
        await startQueenProc()
      },
    })
  })
})
