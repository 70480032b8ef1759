import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Ack, Bus, EventOf, JobEvent, Task } from '@apiary/shared'
import { type BusKind, expectAccounted, TestCluster } from '../harness/index.ts'
import { fakeNode, storeFinished } from './fake-node.ts'

const ends = (events: JobEvent[]) => new Map(events.filter((e) => e.kind === 'node.finished').map((e) => [(e as EventOf<'node.finished'>).node, e as EventOf<'node.finished'>]))

/**
 * `lost` means lost: a hive whose node's result does not come asks the worker again before it
 * gives up on it, and ends it by what the worker says. Run on both buses.
 */
export function defineRecoverySuite(kind: BusKind) {
  describe(`results that do not come, over the ${kind} bus`, () => {
    let c: TestCluster
    let bus: Bus
    beforeEach(async () => {
      c = await TestCluster.start(kind)
      await c.addHive('eu')
      bus = await c.bus('fake-nodes')
    })
    afterEach(async () => {
      if (kind === 'nats') await bus?.close()
      await c.stop()
    })

    it('a finish that never reached the hive: asked again, the worker says it ended ok, and the node ends ok, run once', async () => {
      // The first time it takes the task and its finish goes missing; asked again it says it
      // ended ok and stores that final event again, as a worker does.
      const answer = (task: Task, before: number): Ack => {
        if (before === 0) return { accepted: true, by: 'quiet-1' }
        storeFinished(bus, 'eu', 'quiet-1', task.jobId, 'ok')
        return { accepted: true, by: 'quiet-1', already: 'ok' }
      }
      const node = await fakeNode(bus, 'eu', 'quiet-1', answer, { online: true })
      const { jobId } = await c.client.submit({ operation: { type: 'exec', argv: ['true'] }, targets: 'quiet-1', rollout: { timeoutMs: 200 } })
      const events = await c.events(jobId)
      expectAccounted(events, ['quiet-1'])
      expect(ends(events).get('quiet-1')).toMatchObject({ state: 'ok' })
      // Asked again with the very task it had, under the same grant.
      expect(node.tasks).toHaveLength(2)
      expect(node.tasks[1]).toEqual(node.tasks[0])
    })

    it('a worker that vanished mid-run: nobody answers when asked again, twice, and the node ends lost saying so', async () => {
      const node = await fakeNode(bus, 'eu', 'gone-1', () => ({ accepted: true, by: 'gone-1' }), { online: true })
      const { jobId } = await c.client.submit({ operation: { type: 'exec', argv: ['true'] }, targets: 'gone-1', rollout: { timeoutMs: 200 } })
      const stream = c.events(jobId)
      await node.first
      // It took the task, then left the bus; it still counts as online to the queen.
      node.gone()
      const events = await stream
      expectAccounted(events, ['gone-1'])
      expect(ends(events).get('gone-1')).toMatchObject({ state: 'lost', cause: 'worker gone: no answer when asked again' })
      expect(node.tasks).toHaveLength(1)
    })
  })
}
