import { writeFile } from 'node:fs/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { type Bus, type JobEvent, notRunEvent, subjects } from '@apiary/shared'
import { silentLogger } from '@apiary/shared/runtime'
import { createJobClient, type JobClient } from '@apiary/shared/client'
import { type Embedded, memoryBuses, startEmbedded } from '@apiary/keeper'
import { finished, type TempDir, tempDir, testSigner, waitUntil } from '../harness/index.ts'

const log = silentLogger()

async function events(client: JobClient, jobId: string): Promise<JobEvent[]> {
  const out: JobEvent[] = []
  for await (const ev of client.stream(jobId)) out.push(ev)
  return out
}

describe('a hive’s verdict carrying a start', () => {
  let cluster: Embedded | undefined
  let hiveBus: Bus | undefined
  let dir: TempDir | undefined
  afterEach(async () => {
    await hiveBus?.close()
    await cluster?.close()
    await dir?.remove()
  })

  it('ends the node as the verdict says, and the queen writes no start for it: a hive never ran the node', async () => {
    dir = await tempDir('verdict-start')
    cluster = await startEmbedded({
      log,
      buses: memoryBuses(log),
      queen: { stateDir: dir.path, tokenFile: `${dir.path}/token`, signer: testSigner },
      hives: [{ region: 'eu' }],
      workers: ['web-1', 'web-2'].map((nodeId) => ({ nodeId, region: 'eu' })),
    })
    const client = createJobClient({ url: cluster.queen.url, token: cluster.queen.token })
    const gate = `${dir.path}/go`
    const { jobId } = await client.submit({ operation: { type: 'exec', shell: true, command: `while [ ! -e ${gate} ]; do sleep 0.02; done` }, targets: 'all', rollout: { concurrency: 1 } })
    await waitUntil(async () => (await client.get(jobId)).nodes.some((n) => n.state === 'running'), 'a first node to run')
    const waiting = (await client.get(jobId)).nodes.find((n) => n.state === 'pending')!.node
    // As a hive of the region may send it: numbered, and saying when the node started.
    hiveBus = await cluster.buses.open('forging-hive', { role: 'hive', id: 'hive-x', region: 'eu' })
    const verdict = { ...notRunEvent(jobId, waiting, 'skipped', 'made up'), step: 2, startedAt: 5 }
    await hiveBus.durable.publish(subjects.hiveEvents('eu', jobId), verdict, { id: `${jobId}/${waiting}/forged`, deadline: Date.now() + 10_000 })
    await waitUntil(async () => (await client.get(jobId)).nodes.find((n) => n.node === waiting)?.state === 'skipped', 'the verdict to be applied')
    await writeFile(gate, '')
    const all = await events(client, jobId)
    expect(finished(all).counts).toEqual({ ok: 1, skipped: 1 })
    expect(all.filter((e) => 'node' in e && e.node === waiting).map((e) => e.kind)).toEqual(['node.finished'])
    expect(all.some((e) => 'startedAt' in e)).toBe(false)
  })
})
