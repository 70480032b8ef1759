import { writeFile } from 'node:fs/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { type Bus, notRunEvent, subjects } from '@apiary/shared'
import { finished, TestCluster, waitUntil } from '../harness/index.ts'

describe('a hive’s verdict carrying a start', () => {
  let c: TestCluster | undefined
  let hiveBus: Bus | undefined
  afterEach(async () => {
    await hiveBus?.close()
    await c?.stop()
  })

  it('ends the node as the verdict says, and the queen writes no start for it: a hive never ran the node', async () => {
    c = await TestCluster.start('memory')
    await c.addHive('eu')
    for (const node of ['web-1', 'web-2']) await c.addWorker(node, 'eu')
    const gate = `${c.dir.path}/go`
    const { jobId } = await c.client.submit({ operation: { type: 'exec', shell: true, command: `while [ ! -e ${gate} ]; do sleep 0.02; done` }, targets: 'all', rollout: { concurrency: 1 } })
    await waitUntil(async () => (await c!.client.get(jobId)).nodes.some((n) => n.state === 'running'), 'a first node to run')
    const waiting = (await c.client.get(jobId)).nodes.find((n) => n.state === 'pending')!.node
    // As a hive of the region may send it: numbered, and saying when the node started.
    hiveBus = await c.bus('forging-hive')
    const verdict = { ...notRunEvent(jobId, waiting, 'skipped', 'made up'), step: 2, startedAt: 5 }
    await hiveBus.durable.publish(subjects.hiveEvents('eu', jobId), verdict, { id: `${jobId}/${waiting}/forged`, deadline: Date.now() + 10_000 })
    await waitUntil(async () => (await c!.client.get(jobId)).nodes.find((n) => n.node === waiting)?.state === 'skipped', 'the verdict to be applied')
    await writeFile(gate, '')
    const all = await c.events(jobId)
    expect(finished(all).counts).toEqual({ ok: 1, skipped: 1 })
    expect(all.filter((e) => 'node' in e && e.node === waiting).map((e) => e.kind)).toEqual(['node.finished'])
    expect(all.some((e) => 'startedAt' in e)).toBe(false)
  })
})
