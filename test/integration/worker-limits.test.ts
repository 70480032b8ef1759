import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { access } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { signControl, subjects, type Task } from '@apiary/shared'
import { silentLogger } from '@apiary/shared/runtime'
import { createMemoryBus } from '@apiary/shared/memory-bus'
import { DEFAULT_MAX_TASKS, startWorker, type Worker } from '@apiary/worker'
import { TEST_CONFIG } from '../conformance/durable-suite.ts'
import { testQueenKey, testSigner, waitUntil } from '../harness/index.ts'
import { signedTask as signed } from './signed-task.ts'

const signedTask = (jobId: string, node: string, argv: string[]): Task => signed(jobId, node, { type: 'exec', argv })

describe('a worker’s own limits', () => {
  const bus = createMemoryBus(silentLogger())
  let worker: Worker | undefined
  // The workers' events go to the stream the queen makes.
  beforeAll(() => bus.durable.ensure(TEST_CONFIG))
  afterEach(async () => {
    await worker?.close()
  })

  it('runs at most maxTasks at once and refuses the next, saying so; a finished one frees its place', async () => {
    worker = startWorker({ bus, log: silentLogger(), nodeId: 'web-1', region: 'eu', labels: {}, heartbeatMs: 60_000, queenKey: testQueenKey, maxTasks: 2 })
    const ask = (t: Task) => bus.request(subjects.task('eu', 'web-1'), t, { timeoutMs: 3000 })
    await expect(ask(signedTask('jcap00001', 'web-1', ['sleep', '30']))).resolves.toMatchObject({ accepted: true })
    await expect(ask(signedTask('jcap00002', 'web-1', ['sleep', '0.3']))).resolves.toMatchObject({ accepted: true })
    await expect(ask(signedTask('jcap00003', 'web-1', ['true']))).resolves.toEqual({ accepted: false, by: 'web-1', reason: 'at capacity: 2 tasks running (the most is 2)' })
    expect(worker.running()).toBe(2)
    // A re-offer of a task it runs is not a new task: acknowledged, not refused.
    await expect(ask(signedTask('jcap00001', 'web-1', ['sleep', '30']))).resolves.toEqual({ accepted: true, by: 'web-1', already: 'running' })
    const w = worker
    await waitUntil(() => w.running() === 1, 'the short task to end')
    await expect(ask(signedTask('jcap00004', 'web-1', ['true']))).resolves.toMatchObject({ accepted: true })
  })

  it('runs at most 64 tasks at once unless told otherwise', async () => {
    worker = startWorker({ bus, log: silentLogger(), nodeId: 'web-4', region: 'eu', labels: {}, heartbeatMs: 60_000, queenKey: testQueenKey })
    const ask = (i: number) => bus.request(subjects.task('eu', 'web-4'), signedTask(`jdef${String(i).padStart(6, '0')}`, 'web-4', ['sleep', '30']), { timeoutMs: 3000 })
    const replies = (await Promise.all(Array.from({ length: 65 }, (_, i) => ask(i)))) as Array<{ accepted: boolean; reason?: string }>
    expect(replies.filter((r) => r.accepted)).toHaveLength(DEFAULT_MAX_TASKS)
    expect(DEFAULT_MAX_TASKS).toBe(64)
    expect(replies.at(-1)).toMatchObject({ accepted: false, reason: 'at capacity: 64 tasks running (the most is 64)' })
  })

  it('runs nothing of a task that comes after its job was cancelled, and ends it as the cancel says', async () => {
    worker = startWorker({ bus, log: silentLogger(), nodeId: 'web-3', region: 'eu', labels: {}, heartbeatMs: 60_000, queenKey: testQueenKey })
    const marker = join(tmpdir(), `apiary-late-${process.pid}`)
    const task = signedTask('jlate00001', 'web-3', ['touch', marker])
    const ends: unknown[] = []
    const ended = new Promise<void>((resolve) =>
      bus.subscribe(subjects.nodeEvents('eu', 'web-3', 'jlate00001'), (m) => {
        if ((m.data as { kind: string }).kind === 'node.finished') {
          ends.push(m.data)
          resolve()
        }
      }),
    )
    bus.publish(subjects.control('jlate00001'), signControl({ jobId: 'jlate00001', action: 'cancel', reason: 'cancelled by request', outcome: 'cancelled' }, testSigner, Date.now()))
    await bus.flush()
    await expect(bus.request(subjects.task('eu', 'web-3'), task, { timeoutMs: 3000 })).resolves.toMatchObject({ accepted: true })
    await ended
    expect(ends).toEqual([expect.objectContaining({ state: 'cancelled', cause: 'cancelled by request' })])
    await expect(access(marker)).rejects.toThrow()
  })

  it('refuses two hundred forged tasks without starting one process', async () => {
    worker = startWorker({ bus, log: silentLogger(), nodeId: 'web-2', region: 'eu', labels: {}, heartbeatMs: 60_000, queenKey: testQueenKey })
    const real = signedTask('jflood0001', 'web-2', ['sleep', '30'])
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        bus.request(subjects.task('eu', 'web-2'), { ...real, jobId: `jflood${String(i).padStart(4, '0')}` }, { timeoutMs: 3000 }),
      ),
    )
    expect(replies.filter((r) => (r as { accepted: boolean }).accepted)).toHaveLength(1) // jflood0001 is the job the grant covers
    expect(worker.running()).toBe(1)
  })
})
