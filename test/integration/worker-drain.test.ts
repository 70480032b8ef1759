import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { subjects, type Task, type WireEventOf } from '@apiary/shared'
import { createMetrics, silentLogger } from '@apiary/shared/runtime'
import { createMemoryBus } from '@apiary/shared/memory-bus'
import { startWorker, type Worker, WORKER_METRICS } from '@apiary/worker'
import { TEST_CONFIG } from '../conformance/durable-suite.ts'
import { testQueenKey } from '../harness/index.ts'
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
})
