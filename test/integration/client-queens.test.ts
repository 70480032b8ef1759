import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { JobEvent } from '@apiary/shared'
import { silentLogger } from '@apiary/shared/runtime'
import { createJobClient, type JobClient } from '@apiary/shared/client'
import { type Embedded, memoryBuses, startEmbedded } from '@apiary/keeper'
import { type Queen, startQueen } from '@apiary/queen'
import { finished, type TempDir, tempDir, testSigner } from '../harness/index.ts'

const log = silentLogger()
const TIMING = { durable: { leaseTtlMs: 1000 }, settleMs: 300, sweepMs: 100, cancelGraceMs: 3000 }

/**
 * One job client given both queens of a leader and its standby (real queens, one in-process
 * bus): it follows a running job across the leader stopping, every event once and in order,
 * and its next submit finds the new leader.
 */
describe('job client with two real queens', () => {
  let dir: TempDir | undefined
  let cluster: Embedded | undefined
  let q2: Queen | undefined
  let client: JobClient | undefined
  afterEach(async () => {
    await client?.close()
    await q2?.close()
    await cluster?.close()
    await dir?.remove()
  })

  it('follows a job across the leader stopping, and sends the next job to the queen that took over', async () => {
    dir = await tempDir('client-queens')
    cluster = await startEmbedded({
      log,
      buses: memoryBuses(log),
      queen: { stateDir: join(dir.path, 'q1'), tokenFile: join(dir.path, 'token'), queenId: 'q1', signer: testSigner, ...TIMING },
      defaults: { heartbeatMs: 200, resultGraceMs: 5000, killGraceMs: 500 },
      hives: [{ region: 'eu' }],
      workers: ['web-1', 'web-2', 'web-3'].map((nodeId) => ({ nodeId, region: 'eu' })),
    })
    const bus = await cluster.buses.open('apiary-queen-2', { role: 'queen', id: 'q2' })
    q2 = await startQueen({ bus, log, queenId: 'q2', signer: testSigner, stateDir: join(dir.path, 'q2'), tokenFile: join(dir.path, 'token'), host: '127.0.0.1', port: 0, ...TIMING })
    // The standby first: reads may go there, the submit moves on to the leader.
    client = createJobClient({ url: [q2.url, cluster.queen.url], token: cluster.queen.token })
    const { jobId } = await client.submit({ operation: { type: 'exec', argv: ['sh', '-c', 'sleep 0.4; echo "$APIARY_NODE_ID"'] }, targets: 'all', rollout: { concurrency: 1 } })
    const seen: JobEvent[] = []
    const reconnects: string[] = []
    let stopped = false
    for await (const ev of client.stream(jobId, { output: true, onReconnect: (q) => void reconnects.push(q) })) {
      seen.push(ev)
      // The leader stops once the first node is done; the rest comes from the other queen.
      if (ev.kind === 'node.finished' && !stopped) {
        stopped = true
        await cluster.stopQueen()
      }
    }
    expect(reconnects).toContain(q2.url)
    expect(seen.map((e) => e.seq)).toEqual(seen.map((_, i) => i + 1))
    expect(finished(seen).counts).toEqual({ ok: 3 })
    expect(seen.filter((e) => e.kind === 'node.output').map((e) => (e as { data: string }).data.trim()).sort()).toEqual(['web-1', 'web-2', 'web-3'])
    const next = await client.submit({ operation: { type: 'ping' }, targets: 'all' })
    const more: JobEvent[] = []
    for await (const ev of client.stream(next.jobId)) more.push(ev)
    expect(finished(more).counts).toEqual({ ok: 3 })
  })
})
