import { describe, expect, it } from 'vitest'
import { ApiaryError } from '../errors.ts'
import { type FailoverLimits, type Miss, Queens, type Step, type Tries } from './failover.ts'

const A = 'http://a:7070'
const B = 'http://b:7070'
const C = 'http://c:7070'
const COMMAND: FailoverLimits = { deadlineMs: 30_000, notFoundForMs: 5000, allDown: 'fail', maxWaitMs: 2000 }
const STREAM: FailoverLimits = { deadlineMs: 60_000, notFoundForMs: 5000, allDown: 'retry', maxWaitMs: 5000 }

const refused: Miss = { type: 'refused', reason: 'not_leader: a standby', error: new ApiaryError('not_leader', 'a standby') }
const down: Miss = { type: 'down', reason: 'connect ECONNREFUSED', sent: false }
const lostAfterSending: Miss = { type: 'down', reason: 'other side closed (UND_ERR_SOCKET)', sent: true }
const notFound: Miss = { type: 'not_found', error: new ApiaryError('not_found', 'job j1 does not exist', 'jobId') }

/** A clock the test moves: each step's wait passes on it. */
function world(urls = [A, B]) {
  const clock = { t: 0 }
  const queens = new Queens(urls, () => clock.t)
  return { clock, queens }
}

/**
 * Plays a call out: `answer(queen, n)` says what the n-th try (0-based) at a queen came to.
 * Returns the queens tried, the waits, and how it ended.
 */
function play(tries: Tries, clock: { t: number }, answer: (queen: string, n: number) => Miss | 'served', maxSteps = 200) {
  const tried: string[] = []
  const waits: number[] = []
  const count = new Map<string, number>()
  for (let i = 0; i < maxSteps; i++) {
    const step: Step = tries.next()
    if (step.type === 'fail') return { tried, waits, error: step.error }
    clock.t += step.waitMs
    if (step.waitMs > 0) waits.push(step.waitMs)
    tried.push(step.queen)
    const n = count.get(step.queen) ?? 0
    count.set(step.queen, n + 1)
    const a = answer(step.queen, n)
    if (a === 'served') {
      tries.served(step.queen)
      return { tried, waits, served: step.queen }
    }
    tries.missed(step.queen, a)
    clock.t += 10 // each try takes a moment
  }
  throw new Error('the call never ended')
}

describe('failover between queens', () => {
  it('sends a read to the queen that answered last, and a write to the one that took a write last', () => {
    const { clock, queens } = world([A, B, C])
    expect(play(queens.call('read', COMMAND, { what: 'GET /v1/nodes' }), clock, () => 'served').tried).toEqual([A])
    // A is a standby now: the write moves on to B, the leader.
    const write = play(queens.call('write', COMMAND, { what: 'POST /v1/plan' }), clock, (q) => (q === B ? 'served' : refused))
    expect(write).toMatchObject({ tried: [A, B], served: B })
    // A standby (C) answers a read B could not: reads start there, writes still at B.
    play(queens.call('read', COMMAND, { what: 'GET /v1/jobs/j1', jobId: 'j1' }), clock, (q) => (q === C ? 'served' : notFound))
    expect(play(queens.call('read', COMMAND, { what: 'GET /v1/jobs' }), clock, () => 'served').tried).toEqual([C])
    expect(play(queens.call('write', COMMAND, { what: 'POST /v1/plan' }), clock, () => 'served').tried).toEqual([B])
  })

  it('forgets a leader that says it is not one', () => {
    const { clock, queens } = world([A, B])
    play(queens.call('write', COMMAND, { what: 'POST /v1/plan' }), clock, (q) => (q === B ? 'served' : refused))
    // B stepped down and A took over; B answered last, so the write after A's start goes to B first, then A.
    const r = play(queens.call('write', COMMAND, { what: 'POST /v1/plan' }), clock, (q) => (q === A ? 'served' : refused))
    expect(r.tried).toEqual([B, A])
    expect(play(queens.call('write', COMMAND, { what: 'POST /v1/plan' }), clock, () => 'served').tried).toEqual([A])
  })

  it('goes round again, waiting longer each time, while a queen cannot serve a write yet (no leader elected)', () => {
    const { clock, queens } = world([A, B])
    // A died; B is a standby for its first three answers, then leader.
    const r = play(queens.call('create', COMMAND, { what: 'POST /v1/jobs' }), clock, (q, n) => (q === A ? down : n < 3 ? refused : 'served'))
    expect(r.served).toBe(B)
    expect(r.tried).toEqual([A, B, A, B, A, B, A, B])
    expect(r.waits).toEqual([250, 500, 1000])
  })

  it('gives up at the deadline with an error that names every queen tried and why', () => {
    const { clock, queens } = world([A, B])
    const r = play(queens.call('write', COMMAND, { what: 'POST /v1/jobs/j1/cancel' }), clock, (q) => (q === A ? down : refused))
    expect(r.error).toBeDefined()
    expect(r.error!.code).toBe('unavailable')
    expect(r.error!.message).toMatch(/^no queen served POST \/v1\/jobs\/j1\/cancel within \d+ s: http:\/\/a:7070 \(connect ECONNREFUSED\); http:\/\/b:7070 \(not_leader: a standby\)$/)
    expect(clock.t).toBeLessThanOrEqual(COMMAND.deadlineMs)
    expect(Math.max(...r.waits)).toBe(COMMAND.maxWaitMs)
  })

  it('takes the 503 of the only queen there is as its answer, but keeps a stream trying', () => {
    const { clock, queens } = world([A])
    const waiting: Miss = { type: 'refused', reason: 'unavailable: waiting for 2 known nodes to report', error: new ApiaryError('unavailable', 'waiting for 2 known nodes to report') }
    const r = play(queens.call('create', COMMAND, { what: 'POST /v1/jobs' }), clock, () => waiting)
    expect(r).toMatchObject({ tried: [A], error: (waiting as { error: ApiaryError }).error })
    expect(play(queens.call('read', STREAM, { what: 'the event stream of j1', jobId: 'j1' }), clock, (_, n) => (n < 3 ? waiting : 'served'))).toMatchObject({ served: A, waits: [250, 500, 1000] })
  })

  it('ends a command at once when no queen answers at all', () => {
    const { clock, queens } = world([A, B])
    const r = play(queens.call('read', COMMAND, { what: 'GET /v1/nodes' }), clock, () => down)
    expect(r.tried).toEqual([A, B])
    expect(r.error!.code).toBe('unreachable')
    expect(r.error!.message).toBe('cannot reach any queen: http://a:7070 (connect ECONNREFUSED); http://b:7070 (connect ECONNREFUSED)')
    const one = world([A])
    expect(play(one.queens.call('read', COMMAND, { what: 'GET /v1/nodes' }), one.clock, () => down).error!.message).toBe('cannot reach the queen at http://a:7070: connect ECONNREFUSED')
  })

  it('keeps a stream trying while every queen is down, within its deadline', () => {
    const { clock, queens } = world([A, B])
    const back = play(queens.call('read', STREAM, { what: 'the event stream of j1', jobId: 'j1' }), clock, (q, n) => (q === A && n === 4 ? 'served' : down))
    expect(back).toMatchObject({ served: A, waits: [250, 500, 1000, 2000] })
    const never = play(queens.call('read', STREAM, { what: 'the event stream of j1', jobId: 'j1' }), clock, () => down)
    expect(never.error!.code).toBe('unreachable')
    expect(never.error!.message).toMatch(/^no queen served the event stream of j1 within \d+ s: /)
    expect(Math.max(...never.waits)).toBe(STREAM.maxWaitMs)
  })

  it('never sends a submit to another queen once it may have arrived', () => {
    const { clock, queens } = world([A, B])
    const r = play(queens.call('create', COMMAND, { what: 'POST /v1/jobs' }), clock, (q) => (q === A ? lostAfterSending : 'served'))
    expect(r.tried).toEqual([A])
    expect(r.error!.code).toBe('unreachable')
    expect(r.error!.message).toMatch(/^the queen at http:\/\/a:7070 did not answer POST \/v1\/jobs after it was sent \(other side closed \(UND_ERR_SOCKET\)\): it may have created the job, so it is not sent to another queen/)
    // A refused connection never carried it: the next queen gets it.
    expect(play(queens.call('create', COMMAND, { what: 'POST /v1/jobs' }), clock, (q) => (q === A ? down : 'served')).served).toBe(B)
    // A cancel is harmless to repeat.
    expect(play(queens.call('write', COMMAND, { what: 'POST /v1/jobs/j1/cancel', jobId: 'j1' }), clock, (q) => (q === B ? lostAfterSending : 'served')).served).toBe(A)
  })

  it('believes a 404 at once when nothing suggests lag, after asking every queen', () => {
    const { clock, queens } = world([A, B])
    const r = play(queens.call('read', COMMAND, { what: 'GET /v1/jobs/j1', jobId: 'j1' }), clock, () => notFound)
    expect(r.tried).toEqual([A, B])
    expect(r.error).toBe((notFound as { error: ApiaryError }).error)
    // One queen that has it is enough.
    expect(play(queens.call('read', COMMAND, { what: 'GET /v1/jobs/j1', jobId: 'j1' }), clock, (q) => (q === B ? 'served' : notFound)).served).toBe(B)
  })

  it('looks a little longer for a job it knows exists, or after moving off a queen, then believes the 404', () => {
    const { clock, queens } = world([A, B])
    queens.knowJob('j1')
    // B's index catches up after a few rounds.
    const late = play(queens.call('read', COMMAND, { what: 'GET /v1/jobs/j1', jobId: 'j1' }), clock, (q, n) => (q === B && n === 2 ? 'served' : notFound))
    expect(late).toMatchObject({ served: B, waits: [250, 500] })
    const start = clock.t
    const gone = play(queens.call('read', COMMAND, { what: 'GET /v1/jobs/j2', jobId: 'j2' }), clock, (q) => (q === A ? down : notFound))
    expect(gone.error!.code).toBe('not_found')
    expect(clock.t - start).toBeGreaterThanOrEqual(COMMAND.notFoundForMs)
    expect(clock.t - start).toBeLessThan(COMMAND.deadlineMs)
  })
})
