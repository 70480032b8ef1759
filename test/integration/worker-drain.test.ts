import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type Ack, subjects, type Task, type WireEventOf } from '@apiary/shared'
import { createMetrics, silentLogger } from '@apiary/shared/runtime'
import { createMemoryBus } from '@apiary/shared/memory-bus'
import { type ExecResult, memoryJournal, startTaskRunner, startWorker, type TaskRunner, type Worker, WORKER_METRICS } from '@apiary/worker'
import { TEST_CONFIG } from '../conformance/durable-suite.ts'
import { testQueenKey, waitUntil } from '../harness/index.ts'
import { signedTask as signed } from './signed-task.ts'

const signedTask = (jobId: string, node: string, argv: string[]): Task => signed(jobId, node, { type: 'exec', argv })

/** A worker told to stop (what SIGTERM does in apiary-worker), in one process over the memory bus. */
describe('a worker’s drain', () => {
  const bus = createMemoryBus(silentLogger())
  let worker: Worker | undefined
  beforeAll(() => bus.durable.ensure(TEST_CONFIG))
  afterEach(async () => {
    await worker?.close()
  })

  it('refuses new tasks as draining, answers for those it took, lets a short one finish and stops the one past its grace; counted in its metrics', async () => {
    const metrics = createMetrics('worker', WORKER_METRICS)
    worker = startWorker({ bus, log: silentLogger(), nodeId: 'dr-1', region: 'eu', labels: {}, heartbeatMs: 60_000, queenKey: testQueenKey, metrics })
    const ask = (t: Task) => bus.request(subjects.task('eu', 'dr-1'), t, { timeoutMs: 3000 })
    const ends = new Map<string, WireEventOf<'node.finished'>>()
    const subs = ['jdrain0001', 'jdrain0002', 'jdrain0003'].map((jobId) =>
      bus.subscribe(subjects.nodeEvents('eu', 'dr-1', jobId), (m) => {
        const ev = m.data as WireEventOf<'node.finished'>
        if (ev.kind === 'node.finished') ends.set(ev.jobId, ev)
      }),
    )
    const long = signedTask('jdrain0001', 'dr-1', ['sleep', '30'])
    await expect(ask(long)).resolves.toMatchObject({ accepted: true })
    await expect(ask(signedTask('jdrain0002', 'dr-1', ['sleep', '0.3']))).resolves.toMatchObject({ accepted: true })
    expect(worker.notReady()).toBeNull()

    const drained = worker.drain(1500)
    expect(worker.notReady()).toBe('draining')
    await expect(ask(signedTask('jdrain0003', 'dr-1', ['true']))).resolves.toEqual({ accepted: false, by: 'dr-1', reason: 'worker dr-1 is draining (it was told to stop): it takes no new task' })
    // A task it took is still answered for: a standby hive's re-offer must not see a refusal.
    await expect(ask(long)).resolves.toEqual({ accepted: true, by: 'dr-1', already: 'running' })
    await drained
    for (const s of subs) s.unsubscribe()

    expect(worker.running()).toBe(0)
    expect(ends.get('jdrain0002')).toMatchObject({ state: 'ok' })
    expect(ends.get('jdrain0001')).toMatchObject({ state: 'cancelled', cause: 'the worker stopped: its drain grace (1.5 s) passed while the task ran' })
    expect(ends.has('jdrain0003')).toBe(false)
    const text = (await metrics.render()).body
    expect(text).toContain('apiary_nodes_finished_total{state="ok"} 1')
    expect(text).toContain('apiary_nodes_finished_total{state="cancelled"} 1')
    expect(text).toContain('apiary_tasks_refused_total{reason="draining"} 1')
    expect(text).toContain('apiary_node_duration_seconds_count{state="ok"} 1')
    expect(text).toContain('apiary_draining 1')
  })

  it('a member of a queue group that drains leaves it at once: every new task goes to the other member, none is refused, and what it runs still ends and is reported', async () => {
    const log = silentLogger()
    const releases = new Map<string, () => void>()
    const ok: ExecResult = { state: 'ok', exitCode: 0, signal: null, cause: null, bytes: 0, truncated: false, digest: null }
    const member = (id: string): TaskRunner =>
      startTaskRunner({
        bus,
        log,
        id,
        subject: subjects.ssh('eu'),
        queue: subjects.sshQueue('eu'),
        region: 'eu',
        queenKey: testQueenKey,
        agentless: true,
        eventSubject: (node, jobId) => subjects.sshEvents('eu', node, jobId),
        journal: memoryJournal({ log }),
        maxRunning: 16,
        admit: () => null,
        // Each task runs until the test lets it end.
        execute: (task, _signal, hooks) => {
          hooks.onStart()
          return new Promise((resolve) => releases.set(`${task.jobId}/${task.node}`, () => resolve(ok)))
        },
      })
    const runners = [member('ssh-q-1'), member('ssh-q-2')]
    const ask = (t: Task) => bus.request(subjects.ssh('eu'), t, { timeoutMs: 3000 }) as Promise<Ack>
    const ends: WireEventOf<'node.finished'>[] = []
    const sub = bus.subscribe('apiary.sev.eu.*.*', (m) => {
      const ev = m.data as WireEventOf<'node.finished'>
      if (ev.kind === 'node.finished') ends.push(ev)
    })
    try {
      const first = signed('jqdrain001', 'host-1', { type: 'exec', argv: ['true'] }, { agentless: true })
      const took = await ask(first)
      expect(took).toMatchObject({ accepted: true })
      const drainer = runners.find((_, i) => took.by === `ssh-q-${i + 1}`)!
      const other = runners.find((r) => r !== drainer)!
      const drained = drainer.drain(10_000)
      expect(drainer.draining()).toBe(true)
      // Without leaving, half of these would reach the drainer and be refused as draining.
      const answers = await Promise.all(['host-2', 'host-3', 'host-4', 'host-5'].map((node) => ask(signed('jqdrain001', node, { type: 'exec', argv: ['true'] }, { agentless: true }))))
      expect(answers.map((a) => [a.accepted, a.by])).toEqual(Array(4).fill([true, took.by === 'ssh-q-1' ? 'ssh-q-2' : 'ssh-q-1']))
      expect(drainer.running()).toBe(1)
      expect(other.running()).toBe(4)
      // Its own task still ends, is reported, and lets the drain finish.
      releases.get('jqdrain001/host-1')!()
      await drained
      await waitUntil(async () => ends.some((e) => e.node === 'host-1'), 'the drained task’s end')
      expect(ends.find((e) => e.node === 'host-1')).toMatchObject({ state: 'ok' })
      for (const node of ['host-2', 'host-3', 'host-4', 'host-5']) releases.get(`jqdrain001/${node}`)!()
      await waitUntil(async () => ends.length === 5, 'every end')
    } finally {
      sub.unsubscribe()
      for (const release of releases.values()) release()
      await Promise.all(runners.map((r) => r.close()))
    }
  })
})
