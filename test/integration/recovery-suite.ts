import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Ack, type Bus, type EventOf, type JobEvent, subjects, type Task, type WireEvent } from '@apiary/shared'
import { type BusKind, expectAccounted, TestCluster } from '../harness/index.ts'
import { fakeNode, storeFinished } from './fake-node.ts'

const ends = (events: JobEvent[]) => new Map(events.filter((e) => e.kind === 'node.finished').map((e) => [(e as EventOf<'node.finished'>).node, e as EventOf<'node.finished'>]))

/**
 * Results that come late, out of order or not at all. `lost` means lost: a hive whose node's result does not come asks the worker again before it
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

    // A node's events stored in the events stream in the reverse of their task's order (as a
    // publish retried through a stream leader's failover lands after later ones).
    it('a node’s finish, output and start stored in that order: the job log has start, output, finish, none dropped', async () => {
      const node = 'late-1'
      let jobId = ''
      const fake = await fakeNode(bus, 'eu', node, (task) => {
        jobId = task.jobId
        return { accepted: true, by: node }
      }, { online: true })
      const { jobId: id } = await c.client.submit({ operation: { type: 'exec', argv: ['true'] }, targets: node, rollout: { timeoutMs: 60_000 } })
      const stream = c.events(id)
      await fake.first
      const base = { jobId, node, ts: Date.now() }
      const events: WireEvent[] = [
        { ...base, kind: 'node.finished', step: 3, state: 'ok', exitCode: 0, signal: null, cause: null, durationMs: 5, bytes: 6, truncated: false, digest: null, human: '' },
        { ...base, kind: 'node.output', step: 2, stream: 'stdout', data: 'hello\n', human: '' },
        { ...base, kind: 'node.started', step: 1, human: '' },
      ]
      const seqs: number[] = []
      for (const ev of events) {
        const r = await bus.durable.publish(subjects.nodeEvents('eu', node, jobId), ev, { id: `${jobId}/${node}/${ev.kind}`, deadline: Date.now() + 10_000 })
        seqs.push(r.seq)
      }
      expect(seqs, 'stored in the order published').toEqual([...seqs].sort((a, b) => a - b))
      const log = await stream
      expectAccounted(log, [node])
      expect(log.filter((e) => e.kind.startsWith('node.')).map((e) => e.kind)).toEqual(['node.started', 'node.output', 'node.finished'])
      expect(log.find((e) => e.kind === 'node.output')).toMatchObject({ data: 'hello\n' })
      expect(log.find((e) => e.kind === 'node.finished')).toMatchObject({ state: 'ok' })
    })
  })
}
