import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { type JobEvent, JobRequest, type WireEvent } from '@apiary/shared'
import { createLogger, silentLogger } from '@apiary/shared/runtime'
import { openSqliteStore } from '../store/sqlite.ts'
import type { Batch, JobStore } from '../store/store.ts'
import { EventLog } from './event-log.ts'

const ev = (jobId: string, node: string): WireEvent => ({ jobId, ts: 0, kind: 'node.started', node, human: '' })
const tick = () => new Promise<void>((resolve) => setImmediate(resolve))

/** A logger whose lines the test reads (pino writes to a plain Writable synchronously). */
function recordingLogger() {
  const lines: Array<Record<string, unknown>> = []
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)
      done()
    },
  })
  return { log: createLogger({ component: 'test', destination }), lines }
}

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/** A real job store in a fresh SQLite file, with jobs `ids` of one node `n1` each. */
function sqliteStore(...ids: string[]): JobStore {
  const dir = mkdtempSync(join(tmpdir(), 'apiary-event-log-'))
  dirs.push(dir)
  const store = openSqliteStore(join(dir, 'queen.db'))
  const request = JobRequest.parse({ operation: { type: 'ping' }, targets: 'all' })
  for (const id of ids) store.createJob({ id, request, createdAt: 0, nodes: [{ node: 'n1', region: 'eu' }], rerunOf: null })
  return store
}

/** A node.finished whose result no JSON.stringify can write: nested 300,000 deep (it got past a schema that took any value). */
function unstorable(jobId: string): WireEvent {
  let deep: unknown = 1
  for (let i = 0; i < 300_000; i++) deep = { a: deep }
  return {
    jobId,
    ts: 0,
    kind: 'node.finished',
    node: 'n1',
    state: 'ok',
    exitCode: null,
    signal: null,
    cause: null,
    durationMs: 1,
    bytes: 0,
    truncated: false,
    digest: null,
    result: deep as { pong: true },
    human: 'n1: ok',
  }
}

describe('EventLog', () => {
  it('numbers each job gaplessly, from where it left off', () => {
    const log = new EventLog({ commit: () => {} }, silentLogger())
    log.open('a', 0)
    log.open('b', 41)
    expect([log.append(ev('a', 'x'))?.seq, log.append(ev('b', 'x'))?.seq, log.append(ev('a', 'y'))?.seq]).toEqual([1, 42, 2])
    log.close()
  })

  it('commits what one tick appended in one batch, and tells listeners only after it is stored', async () => {
    const batches: Batch[] = []
    const heard: JobEvent[] = []
    const log = new EventLog({ commit: (b) => void batches.push(b) }, silentLogger())
    log.open('a', 0)
    log.listen('a', (e) => {
      // Stored before heard.
      expect(batches.flatMap((b) => b.events.map((x) => x.event.seq))).toContain(e.seq)
      heard.push(e)
    })
    for (let i = 0; i < 5; i++) log.append(ev('a', `n${i}`))
    log.end({ jobId: 'a', state: 'ok', finishedAt: 1, counts: {}, stopReason: null })
    expect(heard).toEqual([])
    await tick()
    expect(batches).toHaveLength(1)
    expect(batches[0]!.events).toHaveLength(5)
    expect(batches[0]!.ends).toHaveLength(1)
    expect(heard.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5])
    log.close()
  })

  it('keeps a batch the store refused, in order, and retries it: nothing dropped, nothing heard early', async () => {
    let fail = true
    const stored: number[] = []
    const heard: number[] = []
    let retried!: () => void
    const again = new Promise<void>((resolve) => (retried = resolve))
    const log = new EventLog(
      {
        commit: (b) => {
          if (fail) {
            fail = false
            throw new Error('disk full')
          }
          stored.push(...b.events.map((x) => x.event.seq))
          retried()
        },
      },
      silentLogger(),
      10,
    )
    log.open('a', 0)
    log.listen('a', (e) => heard.push(e.seq))
    log.append(ev('a', 'x'))
    log.append(ev('a', 'y'))
    await tick()
    expect(heard).toEqual([])
    log.append(ev('a', 'z'))
    await again
    expect(stored).toEqual([1, 2, 3])
    expect(heard).toEqual([1, 2, 3])
    log.close()
  })

  it('stores the other events of a batch with one that cannot be stored: that one alone is dropped, and logged with its job and kind', async () => {
    const store = sqliteStore('jbad0001', 'jgood001')
    const { log: logger, lines } = recordingLogger()
    const heard: string[] = []
    const log = new EventLog(store, logger, 10)
    log.open('jbad0001', 0)
    log.open('jgood001', 0)
    for (const id of ['jbad0001', 'jgood001']) log.listen(id, (e) => heard.push(`${e.jobId}/${e.seq}/${e.kind}`))
    log.append(ev('jgood001', 'n1'))
    log.append(ev('jbad0001', 'n1'))
    log.append(unstorable('jbad0001'), { node: 'n1', update: { state: 'ok' } })
    log.append({ jobId: 'jgood001', ts: 0, kind: 'node.output', node: 'n1', stream: 'stdout', data: 'hi\n', human: 'n1 | hi' })
    log.end({ jobId: 'jgood001', state: 'ok', finishedAt: 1, counts: { ok: 1 }, stopReason: null })
    await tick()
    expect(store.eventsAfter('jgood001', 0, 10, { output: true }).map((e) => e.kind)).toEqual(['node.started', 'node.output'])
    expect(store.getJob('jgood001')).toMatchObject({ state: 'ok', lastSeq: 2 })
    expect(store.eventsAfter('jbad0001', 0, 10, { output: true }).map((e) => e.kind)).toEqual(['node.started'])
    expect(store.nodes('jbad0001')[0]?.state).toBe('pending')
    expect(heard).toEqual(['jgood001/1/node.started', 'jbad0001/1/node.started', 'jgood001/2/node.output'])
    expect(lines.filter((l) => l.msg === 'dropped an event the store refuses').map((l) => [l.jobId, l.kind, l.seq])).toEqual([['jbad0001', 'node.finished', 2]])
    expect(lines.some((l) => l.msg === 'cannot store events; retrying')).toBe(false)

    // And the job goes on: its next event is stored.
    log.append(ev('jbad0001', 'n1'))
    await tick()
    expect(store.eventsAfter('jbad0001', 0, 10, { output: true }).map((e) => e.seq)).toEqual([1, 3])
    log.close()
    store.close()
  })

  it('drops an event whose sequence number the store already holds, and stores the rest', async () => {
    const store = sqliteStore('jdup0001', 'jother01')
    store.commit({ events: [{ event: { ...ev('jdup0001', 'n1'), seq: 1 } as JobEvent }], ends: [] })
    const { log: logger, lines } = recordingLogger()
    const log = new EventLog(store, logger, 10)
    // Opened as if nothing were stored: its first event reuses seq 1.
    log.open('jdup0001', 0)
    log.open('jother01', 0)
    log.append(ev('jdup0001', 'n1'))
    log.append(ev('jother01', 'n1'))
    log.append(ev('jdup0001', 'n1'))
    await tick()
    expect(store.eventsAfter('jother01', 0, 10, { output: true }).map((e) => e.seq)).toEqual([1])
    expect(store.eventsAfter('jdup0001', 0, 10, { output: true }).map((e) => e.seq)).toEqual([1, 2])
    expect(lines.filter((l) => l.msg === 'dropped an event the store refuses').map((l) => [l.jobId, l.seq])).toEqual([['jdup0001', 1]])
    log.close()
    store.close()
  })

  it('keeps everything for a store that cannot write, even while isolating a bad event, and stores it once the store is back', async () => {
    const real = sqliteStore('jbad0002', 'jgood002')
    // The disk fills up just as the log starts committing one event at a time.
    let full = false
    let fillsUp = true
    const store: Pick<JobStore, 'commit'> = {
      commit(b) {
        if (fillsUp && b.events.length + b.ends.length === 1) [fillsUp, full] = [false, true]
        if (full) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })
        real.commit(b)
      },
    }
    const { log: logger, lines } = recordingLogger()
    const log = new EventLog(store, logger, 10)
    log.open('jbad0002', 0)
    log.open('jgood002', 0)
    let stored!: () => void
    const both = new Promise<void>((resolve) => (stored = resolve))
    log.listen('jgood002', (e) => e.seq === 2 && stored())
    log.append(ev('jgood002', 'n1'))
    log.append(unstorable('jbad0002'))
    log.append(ev('jgood002', 'n1'))
    await tick()
    expect(real.eventsAfter('jgood002', 0, 10, { output: true })).toEqual([])
    expect(lines.filter((l) => l.msg === 'cannot store events; retrying').map((l) => l.events)).toEqual([3])
    expect(lines.some((l) => l.msg === 'dropped an event the store refuses')).toBe(false)
    full = false
    await both
    expect(real.eventsAfter('jgood002', 0, 10, { output: true }).map((e) => e.seq)).toEqual([1, 2])
    expect(lines.filter((l) => l.msg === 'dropped an event the store refuses').map((l) => l.jobId)).toEqual(['jbad0002'])
    log.close()
    real.close()
  })

  it('drops an event of a job that is not open, so one stray event cannot block the commits', async () => {
    const stored: string[] = []
    const log = new EventLog({ commit: (b) => void stored.push(...b.events.map((x) => `${x.event.jobId}/${x.event.seq}`)) }, silentLogger())
    log.open('a', 0)
    log.append(ev('a', 'x'))
    log.end({ jobId: 'a', state: 'ok', finishedAt: 1, counts: {}, stopReason: null })
    expect(log.append(ev('a', 'late'))).toBeUndefined()
    expect(log.append(ev('never-opened', 'x'))).toBeUndefined()
    log.open('b', 0)
    log.append(ev('b', 'x'))
    await tick()
    expect(stored).toEqual(['a/1', 'b/1'])
    log.close()
  })

  it('stops telling a listener that left', async () => {
    const heard: number[] = []
    const log = new EventLog({ commit: () => {} }, silentLogger())
    log.open('a', 0)
    const off = log.listen('a', (e) => heard.push(e.seq))
    log.append(ev('a', 'x'))
    await tick()
    off()
    log.append(ev('a', 'y'))
    await tick()
    expect(heard).toEqual([1])
    log.close()
  })
})
