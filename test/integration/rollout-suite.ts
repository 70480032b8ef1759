import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type EventOf, type Heartbeat, type JobEvent, subjects, type Task } from '@apiary/shared'
import { type BusKind, expectAccounted, finished, TestCluster } from '../harness/index.ts'
import { WORKER_SILENT_CAUSE } from '@apiary/queen'

const ends = (events: JobEvent[]) => new Map(events.filter((e) => e.kind === 'node.finished').map((e) => [(e as EventOf<'node.finished'>).node, e as EventOf<'node.finished'>]))

/** Rollout policy and node states, on either bus. */
export function defineRolloutSuite(kind: BusKind) {
  describe(`rollout policy over the ${kind} bus`, () => {
    let c: TestCluster
    const nodes = Array.from({ length: 10 }, (_, i) => `n-${String(i + 1).padStart(2, '0')}`)
    beforeEach(async () => {
      c = await TestCluster.start(kind, { heartbeatMs: 150, cancelGraceMs: 3000 })
      await c.addHive('eu')
      for (const n of nodes) await c.addWorker(n, 'eu', { tier: n <= 'n-05' ? 'a' : 'b' })
    })
    afterEach(async () => {
      await c.stop()
    })

    it('stops dispatching once maxErrors is reached: in flight finishes, the rest is skipped, the job says why', async () => {
      const { jobId } = await c.client.submit({
        operation: { type: 'exec', argv: ['false'] },
        targets: 'all',
        rollout: { concurrency: 1, maxErrors: 3 },
      })
      const events = await c.events(jobId)
      expectAccounted(events, nodes)
      const fin = finished(events)
      expect(fin.counts).toEqual({ failed: 3, skipped: 7 })
      expect(fin.stopReason).toBe('max errors reached (3 of 3 allowed)')
      expect(events.filter((e) => e.kind === 'node.started')).toHaveLength(3)
      expect(events.some((e) => e.kind === 'job.halted')).toBe(true)
      const skipped = [...ends(events).values()].filter((e) => e.state === 'skipped')
      for (const s of skipped) expect(s.cause).toBe('not dispatched: max errors reached (3 of 3 allowed)')
      expect((await c.client.get(jobId)).stopReason).toBe('max errors reached (3 of 3 allowed)')
    })

    it('resolves percentages of the targets for maxErrors and concurrency', async () => {
      const { jobId } = await c.client.submit({
        operation: { type: 'exec', shell: true, command: 'sleep 0.1; test "$APIARY_NODE_ID" \\> n-08' },
        targets: 'all',
        rollout: { concurrency: '20%', maxErrors: '30%' },
      })
      const events = await c.events(jobId)
      expectAccounted(events, nodes)
      let running = 0
      let peak = 0
      for (const e of events) {
        if (e.kind === 'node.started') peak = Math.max(peak, ++running)
        if (e.kind === 'node.finished' && e.state !== 'skipped') running--
      }
      expect(peak).toBe(2)
      // n-01 … n-08 fail in order, two at a time: the third failure stops it.
      const fin = finished(events)
      expect(fin.counts.failed).toBeGreaterThanOrEqual(3)
      expect(fin.counts.failed).toBeLessThanOrEqual(4)
      expect(fin.stopReason).toMatch(/^max errors reached \(\d of 3 allowed\)$/)
    })

    it('runs the canary alone and goes on when it is ok', async () => {
      const { jobId } = await c.client.submit({ operation: { type: 'exec', argv: ['true'] }, targets: 'all', rollout: { canary: 2 } })
      const events = await c.events(jobId)
      expectAccounted(events, nodes)
      const kinds = events.map((e) => (e.kind === 'job.canary' ? `canary:${e.state}` : e.kind === 'node.started' ? `started:${e.node}` : e.kind))
      const passed = kinds.indexOf('canary:passed')
      expect(passed).toBeGreaterThan(0)
      expect(kinds.slice(0, passed).filter((k) => k.startsWith('started:')).sort()).toEqual(['started:n-01', 'started:n-02'])
      expect(finished(events).counts.ok).toBe(10)
    })

    it('stops after a canary that is not ok: the rest end skipped', async () => {
      const { jobId } = await c.client.submit({
        operation: { type: 'exec', shell: true, command: 'test "$APIARY_NODE_ID" != n-02' },
        targets: 'all',
        rollout: { canary: 3 },
      })
      const events = await c.events(jobId)
      expectAccounted(events, nodes)
      const fin = finished(events)
      expect(fin.counts).toEqual({ ok: 2, failed: 1, skipped: 7 })
      expect(fin.stopReason).toBe('canary failed (1 of 3 not ok)')
      expect(events.filter((e) => e.kind === 'node.started').map((e) => (e as EventOf<'node.started'>).node).sort()).toEqual(['n-01', 'n-02', 'n-03'])
    })

    it('ends a job at its deadline: running nodes time out, the rest are skipped', async () => {
      const { jobId } = await c.client.submit({
        operation: { type: 'exec', shell: true, command: 'echo started; sleep 30' },
        targets: 'tier=a',
        rollout: { concurrency: 2, deadlineMs: 600, timeoutMs: 60_000 },
      })
      const events = await c.events(jobId)
      expectAccounted(events, nodes.slice(0, 5))
      const fin = finished(events)
      expect(fin.counts).toEqual({ timeout: 2, skipped: 3 })
      expect(fin.stopReason).toBe('job deadline passed')
      for (const e of ends(events).values()) expect(e.cause).toMatch(/job deadline passed/)
    })

    it('tells an undelivered task (delivery deadline) from an execution timeout', async () => {
      // A node that heartbeats but never takes its tasks.
      const bus = await c.bus('mute')
      bus.subscribe(subjects.task('eu', 'mute-1'), () => undefined)
      const hb: Heartbeat = { id: 'mute-1', role: 'worker', region: 'eu', labels: {}, executor: 'local', status: 'healthy', running: 0, version: 't', intervalMs: 60_000, ts: Date.now() }
      bus.publish(subjects.heartbeat('worker', 'eu', 'mute-1'), hb)
      await bus.flush()
      const { jobId } = await c.client.submit({
        operation: { type: 'exec', argv: ['sleep', '5'] },
        targets: 'mute-1|n-01',
        rollout: { deliveryTimeoutMs: 300, timeoutMs: 300 },
      })
      const events = await c.events(jobId)
      expectAccounted(events, ['mute-1', 'n-01'])
      const byNode = ends(events)
      expect(byNode.get('mute-1')).toMatchObject({ state: 'error', cause: 'undelivered: no worker took the task in time' })
      expect(byNode.get('n-01')).toMatchObject({ state: 'timeout', cause: 'execution deadline passed' })
      if (kind === 'nats') await bus.close()
    })

    it('marks a node lost when its worker stops heartbeating mid-run and its result deadline passes, and never runs it again', async () => {
      const bus = await c.bus('ghost')
      const tasks: Task[] = []
      const hb: Heartbeat = { id: 'ghost-1', role: 'worker', region: 'eu', labels: {}, executor: 'local', status: 'healthy', running: 0, version: 't', intervalMs: 100, ts: Date.now() }
      bus.subscribe(subjects.task('eu', 'ghost-1'), (msg) => {
        tasks.push(msg.data as Task)
        msg.respond({ accepted: true, by: 'ghost-1' })
        // It starts the task, then vanishes: no more heartbeats, no result.
        bus.publish(subjects.nodeEvents('eu', 'ghost-1', (msg.data as Task).jobId), { jobId: (msg.data as Task).jobId, ts: Date.now(), kind: 'node.started', node: 'ghost-1', human: 'ghost-1: started' })
      })
      bus.publish(subjects.heartbeat('worker', 'eu', 'ghost-1'), hb)
      await bus.flush()
      const { jobId } = await c.client.submit({ operation: { type: 'exec', argv: ['sleep', '30'] }, targets: 'ghost-1', rollout: { timeoutMs: 1000 } })
      const events = await c.events(jobId)
      expectAccounted(events, ['ghost-1'])
      // The queen's verdict (its deadline, 1 s + the 3 s grace from the silence, comes before the hive's re-ask at 1 s + 5 s).
      expect(ends(events).get('ghost-1')).toMatchObject({ state: 'lost', cause: WORKER_SILENT_CAUSE })
      expect(tasks).toHaveLength(1)
      if (kind === 'nats') await bus.close()
    })

    it('offers again what a hive took when that hive stops heartbeating, and skips it when no live hive takes it', async () => {
      await c.addWorker('z-1', 'zz')
      const bus = await c.bus('dying-hive')
      // A hive that takes the share, heartbeats once, and is never heard from again.
      bus.subscribe(subjects.hiveJobs('zz'), (msg) => msg.respond({ accepted: true, by: 'hive-zz' }), { queue: subjects.hiveQueue('zz') })
      const hb: Heartbeat = { id: 'hive-zz', role: 'hive', region: 'zz', labels: {}, executor: 'hive', status: 'healthy', running: 0, version: 't', intervalMs: 100, ts: Date.now() }
      bus.publish(subjects.heartbeat('hive', 'zz', 'hive-zz'), hb)
      await bus.flush()
      const { jobId } = await c.client.submit({ operation: { type: 'exec', argv: ['true'] }, targets: 'z-1' })
      const events = await c.events(jobId)
      expectAccounted(events, ['z-1'])
      // The silent hive answers every re-offer; a hive that does not heartbeat is not given the share.
      expect(ends(events).get('z-1')).toMatchObject({ state: 'skipped', cause: 'not dispatched: no hive of region zz took the share over (hive hive-zz took the share but does not heartbeat)' })
      expect(events.filter((e) => e.kind === 'job.region')).toHaveLength(1)
      if (kind === 'nats') await bus.close()
    })

    it('re-runs exactly the nodes that ended in the given states, as a new linked job', async () => {
      const first = await c.client.submit({ operation: { type: 'exec', shell: true, command: 'case "$APIARY_NODE_ID" in n-03|n-07) exit 2;; esac' }, targets: 'all' })
      expect(finished(await c.events(first.jobId)).counts).toEqual({ ok: 8, failed: 2 })
      const again = await c.client.rerun(first.jobId, { only: ['failed'] })
      expect(again.nodes).toEqual(['n-03', 'n-07'])
      const events = await c.events(again.jobId)
      expectAccounted(events, ['n-03', 'n-07'])
      const job = await c.client.get(again.jobId)
      expect(job.rerunOf).toBe(first.jobId)
      expect(job.operation).toEqual((await c.client.get(first.jobId)).operation)
      await expect(c.client.rerun(again.jobId, { only: ['lost'] })).rejects.toMatchObject({ code: 'invalid_input', field: 'only' })
    })

    it('refuses a destructive operation without a confirmation of the node count', async () => {
      // Destructive by its words (no cwd: wherever the worker runs, perhaps /), harmless here:
      // without a shell, rm is given the name ./* itself, and no file has it.
      const op = { type: 'exec' as const, argv: ['rm', '-rf', './*'] }
      const plan = await c.client.plan({ operation: op, targets: 'tier=b' })
      expect(plan).toMatchObject({ nodes: 5, online: 5, regions: { eu: 5 }, risk: { class: 'destructive', reasons: ['recursive delete of a broad path'] } })
      await expect(c.client.submit({ operation: op, targets: 'tier=b' })).rejects.toMatchObject({ code: 'confirmation_required', details: { nodes: 5 } })
      await expect(c.client.submit({ operation: op, targets: 'tier=b', confirm: { nodes: 4 } })).rejects.toMatchObject({ code: 'confirmation_required' })
      expect(await c.client.list()).toHaveLength(0)
      const ok = await c.client.submit({ operation: op, targets: 'tier=b', confirm: { nodes: 5 } })
      expect(finished(await c.events(ok.jobId)).counts.ok).toBe(5)
    })
  })
}
