import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isApiaryError, type JobEvent, JobRequestView } from '@apiary/shared'
import { openSqliteStore } from './sqlite.ts'
import type { JobStore } from './store.ts'

let dir: string
let store: JobStore
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'apiary-store-'))
  store = openSqliteStore(join(dir, 'queen.db'))
  store.createJob({ id: 'jstore01', request: JobRequestView.parse({ operation: { type: 'ping' }, targets: 'all' }), createdAt: 0, nodes: [{ node: 'n1', region: 'eu' }], rerunOf: null })
})
afterEach(() => {
  store.close()
  rmSync(dir, { recursive: true, force: true })
})

const started = (seq: number): JobEvent => ({ jobId: 'jstore01', seq, ts: 0, kind: 'node.started', node: 'n1', human: '' })
const thrown = (fn: () => void): unknown => {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

describe('the SQLite job store', () => {
  it('keeps its database, WAL and shared memory to its owner (0600), even a file made readable before', () => {
    store.commit({ events: [{ event: started(1) }], ends: [] })
    for (const f of ['queen.db', 'queen.db-wal', 'queen.db-shm']) expect((statSync(join(dir, f)).mode & 0o777).toString(8), f).toBe('600')
    store.close()
    chmodSync(join(dir, 'queen.db'), 0o644)
    store = openSqliteStore(join(dir, 'queen.db'))
    expect((statSync(join(dir, 'queen.db')).mode & 0o777).toString(8)).toBe('600')
  })

  it('refuses as invalid_input, naming the event, what it cannot write as JSON, and writes nothing of that batch', () => {
    let deep: unknown = 1
    for (let i = 0; i < 300_000; i++) deep = { a: deep }
    const bad = { ...started(2), result: deep } as JobEvent
    const err = thrown(() => store.commit({ events: [{ event: started(1) }, { event: bad }], ends: [] }))
    expect(isApiaryError(err, 'invalid_input')).toBe(true)
    expect((err as Error).message).toMatch(/^cannot store event 2 \(node\.started\) of job jstore01: /)
    expect(store.eventsAfter('jstore01', 0, 10, { output: true })).toEqual([])
  })

  it('refuses a sequence number it already holds as invalid_input', () => {
    store.commit({ events: [{ event: started(1) }], ends: [] })
    const err = thrown(() => store.commit({ events: [{ event: started(1) }], ends: [] }))
    expect(isApiaryError(err, 'invalid_input')).toBe(true)
  })

  it("keeps a node's typed result", () => {
    const fin: JobEvent = { jobId: 'jstore01', seq: 1, ts: 0, kind: 'node.finished', node: 'n1', state: 'ok', exitCode: null, signal: null, cause: null, durationMs: 1, bytes: 0, truncated: false, digest: null, result: { pong: true }, human: 'n1: ok' }
    store.commit({ events: [{ event: fin, nodeUpdate: { node: 'n1', update: { state: 'ok', result: { pong: true } } } }], ends: [] })
    expect(store.nodes('jstore01')[0]).toMatchObject({ state: 'ok', result: { pong: true } })
  })

  it('applies a job-log record once: at or before its position it is skipped; the position and the stream source are kept', () => {
    const job = { id: 'jlog0001', request: JobRequestView.parse({ operation: { type: 'ping' }, targets: 'all' }), createdAt: 5, nodes: [{ node: 'b', region: 'eu' }, { node: 'a', region: 'eu' }], rerunOf: null }
    const ev1: JobEvent = { jobId: 'jlog0001', seq: 1, ts: 0, kind: 'node.started', node: 'b', human: '' }
    expect(store.commit({ jobs: [job], events: [{ event: ev1, nodeUpdate: { node: 'b', update: { state: 'running' } } }], ends: [], runs: [{ jobId: 'jlog0001', run: { v: 1, nextPhase: 1 } }], src: 12 }, 3)).toBe(true)
    expect(store.commit({ jobs: [job], events: [{ event: ev1 }], ends: [] }, 3)).toBe(false)
    expect(store.position()).toEqual({ logSeq: 3, eventsSeq: 12 })
    const state = store.runState('jlog0001')!
    expect(state.run).toEqual({ v: 1, nextPhase: 1 })
    // In target order, not by name: the canary is the first targets.
    expect(state.nodes.map((n) => [n.node, n.state])).toEqual([
      ['b', 'running'],
      ['a', 'pending'],
    ])
    expect(store.runState('jnope001')).toBeUndefined()
  })

  it('counts the output kept of each node, in bytes as stored', () => {
    const out = (seq: number, data: string): JobEvent => ({ jobId: 'jstore01', seq, ts: 0, kind: 'node.output', node: 'n1', stream: 'stdout', data, human: '' })
    store.commit({ events: [{ event: out(1, 'héllo') }, { event: out(2, 'x') }], ends: [] })
    expect(store.runState('jstore01')!.nodes[0]!.kept).toEqual({ bytes: 7, events: 2 })
  })

  it('prunes finished jobs older than the cut, a few at a time, never a running one', () => {
    const request = JobRequestView.parse({ operation: { type: 'ping' }, targets: 'all' })
    for (const [i, id] of ['jold0001', 'jold0002', 'jnew0001'].entries()) store.createJob({ id, request, createdAt: i, nodes: [{ node: 'n1', region: 'eu' }], rerunOf: null })
    store.commit({ events: [{ event: { ...started(1), jobId: 'jold0001' } }], ends: [
      { jobId: 'jold0001', state: 'ok', finishedAt: 10, counts: {}, stopReason: null },
      { jobId: 'jold0002', state: 'ok', finishedAt: 20, counts: {}, stopReason: null },
      { jobId: 'jnew0001', state: 'ok', finishedAt: 100, counts: {}, stopReason: null },
    ] })
    expect(store.prune(50, 1)).toBe(1)
    expect(store.prune(50, 10)).toBe(1)
    expect(store.prune(50, 10)).toBe(0)
    expect(store.listJobs({ limit: 10 }).map((j) => j.id).sort()).toEqual(['jnew0001', 'jstore01'])
    expect(store.eventsAfter('jold0001', 0, 10, { output: true })).toEqual([])
  })
})
