import { describe, expect, it } from 'vitest'
import { type FinalState, JobRequestView, type JobRequestInput, notRunEvent, WireEvent, type WireEventOf } from '@apiary/shared'
import { DRAINING_CAUSE, type Effect, JobRun, maxOutputEvents, type RunTarget, WORKER_SILENT_CAUSE } from './job-run.ts'

const GRACE = 1000

function request(rollout: JobRequestInput['rollout'] = {}, outputCapBytes?: number): JobRequestView {
  return JobRequestView.parse({ operation: { type: 'exec', argv: ['true'] }, targets: 'all', rollout, outputCapBytes })
}

const targets = (n: number, o: Partial<RunTarget> = {}): RunTarget[] =>
  Array.from({ length: n }, (_, i) => ({ id: `n${i + 1}`, region: i % 2 === 0 ? 'eu' : 'us', online: true, agentless: false, ...o }))

const started = (node: string): WireEvent => ({ jobId: 'j1', ts: 0, kind: 'node.started', node, human: '' })
const output = (node: string, data: string): WireEvent => ({ jobId: 'j1', ts: 0, kind: 'node.output', node, stream: 'stdout', data, human: '' })
const finished = (node: string, state: FinalState, exitCode: number | null = state === 'ok' ? 0 : 1): WireEvent => ({
  ...notRunEvent('j1', node, state, state === 'ok' ? '' : 'boom', 0),
  cause: state === 'ok' ? null : 'boom',
  exitCode,
  digest: 'd',
})

/** A run and everything it has asked for, with a clock the test moves. */
class Harness {
  now = 0
  readonly effects: Effect[] = []
  run!: JobRun

  constructor(req: JobRequestView, t: RunTarget[]) {
    const { run, effects } = JobRun.submit({ id: 'j1', request: req, createdAt: 0, cancelGraceMs: GRACE }, t, {}, this.now)
    this.run = run
    this.effects.push(...effects)
  }

  feed(effects: Effect[]): this {
    this.effects.push(...effects)
    return this
  }
  event(ev: WireEvent) {
    return this.feed(this.run.onEvent(ev, this.now))
  }
  at(ms: number) {
    this.now = ms
    return this.feed(this.run.tick(ms))
  }
  /** Accepts every share offered so far, as a hive would. */
  acceptShares(by = 'hive-1') {
    for (const s of this.shares()) this.feed(this.run.onShare(s, { accepted: true, by }, this.now))
    return this
  }
  shares() {
    return this.effects.flatMap((e) => (e.type === 'dispatch' ? [e.share] : []))
  }
  events(kind?: string) {
    return this.effects.flatMap((e) => (e.type === 'emit' && (kind === undefined || e.event.kind === kind) ? [e.event] : []))
  }
  /** The final state and cause of each node, as the run reported them. */
  ends(): Map<string, { state: string; cause: string | null }> {
    const m = new Map<string, { state: string; cause: string | null }>()
    for (const ev of this.events('node.finished')) if (ev.kind === 'node.finished') m.set(ev.node, { state: ev.state, cause: ev.cause })
    return m
  }
  finishedEvent() {
    const f = this.events('job.finished')
    expect(f).toHaveLength(1)
    return f[0] as Extract<WireEvent, { kind: 'job.finished' }>
  }
}

describe('JobRun', () => {
  it('hands each region its share with the rollout policy, and finishes once every node ends', () => {
    const h = new Harness(request({ concurrency: '50%', maxErrors: 3 }), targets(4))
    expect(h.events().map((e) => e.kind)).toEqual(['job.submitted'])
    const shares = h.shares()
    expect(shares.map((s) => [s.region, s.nodes, s.concurrency, s.maxErrors, s.phase])).toEqual([
      ['eu', ['n1', 'n3'], 1, 3, 0],
      ['us', ['n2', 'n4'], 1, 3, 0],
    ])
    h.acceptShares()
    expect(h.events('job.region')).toHaveLength(2)
    for (const n of ['n1', 'n2', 'n3']) h.event(started(n)).event(finished(n, 'ok'))
    expect(h.run.finished).toBe(false)
    h.event(finished('n4', 'failed'))
    const fin = h.finishedEvent()
    expect(fin.state).toBe('failed')
    expect(fin.counts).toEqual({ ok: 3, failed: 1 })
    expect(fin.groups.map((g) => [g.state, g.count, g.nodes])).toEqual([
      ['ok', 3, ['n1', 'n2', 'n3']],
      ['failed', 1, ['n4']],
    ])
    expect(h.effects.at(-1)).toMatchObject({ type: 'finished', end: { jobId: 'j1', state: 'failed', stopReason: null } })
    expect(h.run.nextWake()).toBeNull()
  })

  it('ends offline targets at once and never offers them to a hive', () => {
    const t = targets(3)
    t[1]!.online = false
    const h = new Harness(request(), t)
    expect(h.ends().get('n2')).toEqual({ state: 'error', cause: 'offline' })
    expect(h.shares().flatMap((s) => s.nodes)).toEqual(['n1', 'n3'])
  })

  it('ends a target whose worker drains at once, saying so, and never offers it to a hive', () => {
    const t = targets(3)
    t[0]!.draining = true
    const h = new Harness(request(), t)
    expect(h.ends().get('n1')).toEqual({ state: 'error', cause: DRAINING_CAUSE })
    expect(h.shares().flatMap((s) => s.nodes)).toEqual(['n2', 'n3'])
  })

  it('finishes a job whose targets are all offline without dispatching', () => {
    const h = new Harness(request(), targets(2, { online: false }))
    expect(h.shares()).toEqual([])
    expect(h.finishedEvent().counts).toEqual({ error: 2 })
  })

  it('runs the canary alone and rolls out to the rest only when all of it is ok', () => {
    const h = new Harness(request({ canary: 1 }), targets(3))
    expect(h.events('job.canary')).toMatchObject([{ state: 'running', nodes: 1 }])
    expect(h.shares().map((s) => s.nodes)).toEqual([['n1']])
    h.acceptShares().event(started('n1')).event(finished('n1', 'ok'))
    expect(h.events('job.canary').map((e) => (e.kind === 'job.canary' ? e.state : ''))).toEqual(['running', 'passed'])
    expect(h.shares().map((s) => [s.phase, s.nodes])).toEqual([
      [0, ['n1']],
      [1, ['n2']],
      [1, ['n3']],
    ])
  })

  it('halts on a failed canary: the rest end skipped and the job says why', () => {
    const h = new Harness(request({ canary: 2 }), targets(5))
    h.acceptShares().event(finished('n1', 'ok')).event(finished('n2', 'failed'))
    expect(h.run.stop).toEqual({ kind: 'halted', reason: 'canary failed (1 of 2 not ok)' })
    expect(h.effects).toContainEqual({ type: 'control', control: { jobId: 'j1', action: 'halt', reason: 'canary failed (1 of 2 not ok)', outcome: 'cancelled' } })
    const ends = h.ends()
    for (const n of ['n3', 'n4', 'n5']) expect(ends.get(n)).toEqual({ state: 'skipped', cause: 'not dispatched: canary failed (1 of 2 not ok)' })
    expect(h.shares()).toHaveLength(2) // only the canary's share was ever offered
    expect(h.finishedEvent()).toMatchObject({ state: 'failed', stopReason: 'canary failed (1 of 2 not ok)', counts: { ok: 1, failed: 1, skipped: 3 } })
  })

  it('halts once the error budget is spent; what is in flight may still finish', () => {
    const h = new Harness(request({ maxErrors: 2 }), targets(4))
    h.acceptShares().event(started('n1')).event(started('n2'))
    h.event(finished('n3', 'failed'))
    expect(h.run.stop.kind).toBe('dispatching')
    h.event(finished('n4', 'timeout'))
    expect(h.run.stop).toEqual({ kind: 'halted', reason: 'max errors reached (2 of 2 allowed)' })
    expect(h.events('job.halted')).toHaveLength(1)
    // Halting does not stop what runs: no grace, no deadline.
    expect(h.run.nextWake()).toBeNull()
    h.event(finished('n1', 'ok')).event(finished('n2', 'ok'))
    expect(h.finishedEvent()).toMatchObject({ state: 'failed', counts: { ok: 2, failed: 1, timeout: 1 } })
  })

  it('counts the budget over the whole job: the second phase is offered with the errors so far', () => {
    const h = new Harness(request({ canary: 1, maxErrors: 5 }), targets(3))
    expect(h.shares()[0]!.errorsSoFar).toBe(0)
    h.acceptShares().event(finished('n1', 'ok'))
    expect(h.shares().slice(1).every((s) => s.errorsSoFar === 0 && s.maxErrors === 5)).toBe(true)
  })

  it('at the job deadline stops what runs, then ends the silent: pending skipped, running lost', () => {
    const h = new Harness(request({ deadlineMs: 5000 }), targets(3))
    h.acceptShares().event(started('n1')).event(started('n2'))
    expect(h.run.nextWake()).toBe(5000)
    h.at(4999)
    expect(h.run.stop.kind).toBe('dispatching')
    h.at(5000)
    expect(h.run.stop).toEqual({ kind: 'timing-out', reason: 'job deadline passed' })
    expect(h.effects).toContainEqual({ type: 'control', control: { jobId: 'j1', action: 'cancel', reason: 'job deadline passed', outcome: 'timeout' } })
    h.event(finished('n1', 'timeout'))
    expect(h.run.nextWake()).toBe(5000 + GRACE)
    h.at(5000 + GRACE - 1)
    expect(h.run.finished).toBe(false)
    h.at(5000 + GRACE)
    expect(h.ends().get('n2')).toEqual({ state: 'lost', cause: 'no confirmation after: job deadline passed' })
    expect(h.ends().get('n3')).toEqual({ state: 'skipped', cause: 'not dispatched: job deadline passed' })
    expect(h.finishedEvent()).toMatchObject({ state: 'failed', stopReason: 'job deadline passed' })
  })

  it('cancels: the job ends cancelled when every node has confirmed, keeping the first stop reason', () => {
    const h = new Harness(request({ maxErrors: 1 }), targets(3))
    h.acceptShares().event(started('n1')).event(started('n2')).event(finished('n3', 'failed'))
    expect(h.run.stop.kind).toBe('halted')
    h.feed(h.run.cancel('cancelled by request', h.now))
    expect(h.run.stop).toEqual({ kind: 'cancelled', reason: 'max errors reached (1 of 1 allowed)' })
    expect(h.events('job.cancelling')).toMatchObject([{ reason: 'cancelled by request' }])
    // A second cancel changes nothing.
    expect(h.run.cancel('again', h.now)).toEqual([])
    h.event(finished('n1', 'cancelled')).event(finished('n2', 'cancelled'))
    expect(h.finishedEvent()).toMatchObject({ state: 'cancelled', counts: { cancelled: 2, failed: 1 } })
  })

  it('re-sends the stop to a hive that takes its share after it', () => {
    const h = new Harness(request(), targets(2))
    h.feed(h.run.cancel('stop', 0))
    const before = h.effects.filter((e) => e.type === 'control').length
    h.acceptShares()
    expect(h.effects.filter((e) => e.type === 'control').length).toBe(before + 2)
  })

  it('ends a region no hive took as error with the cause, every node of it', () => {
    const h = new Harness(request(), targets(4))
    h.feed(h.run.onShare({ region: 'eu', phase: 0, attempt: 0, nodes: ['n1', 'n3'] }, { accepted: false, cause: 'no hive for region eu' }, 0))
    expect(h.ends()).toEqual(
      new Map([
        ['n1', { state: 'error', cause: 'no hive for region eu' }],
        ['n3', { state: 'error', cause: 'no hive for region eu' }],
      ]),
    )
  })

  it('sweeps: a running node whose worker went silent is lost once its result deadline passes with no result; nothing is skipped for a silent hive', () => {
    const h = new Harness(request({ timeoutMs: 5000 }), targets(4))
    h.feed(h.run.onShare({ region: 'eu', phase: 0, attempt: 0, nodes: ['n1', 'n3'] }, { accepted: true, by: 'hive-eu' }, 0))
    h.event(started('n1')).event(started('n2'))
    const offline = { workerOffline: (n: string) => n === 'n1' || n === 'n2' || n === 'n4', hiveGone: () => false }
    h.feed(h.run.sweep(offline, 0))
    // Silent is not gone: a paused or cut-off worker may still report.
    expect(h.ends().size).toBe(0)
    expect(h.effects).toContainEqual(expect.objectContaining({ type: 'note', level: 'warn', fields: { nodes: 2, first: ['n1', 'n2'] } }))
    expect(h.run.nextWake()).toBe(5000 + GRACE)
    // Sweeps again while they stay silent: one deadline each, from when the silence was seen.
    h.now = 2000
    h.feed(h.run.sweep(offline, 2000))
    // One deadline for what one sweep found, stored compactly (the nodes' ids, not a cause each).
    expect(h.run.snapshot().graces.filter((g) => g.nodes !== undefined).map((g) => [g.nodes, g.at])).toEqual([[['n1', 'n2'], 5000 + GRACE]])
    // n1's worker comes back and reports: its real outcome stands.
    h.event(finished('n1', 'ok'))
    h.at(5000 + GRACE)
    expect(h.ends().get('n1')).toEqual({ state: 'ok', cause: null })
    expect(h.ends().get('n2')).toEqual({ state: 'lost', cause: WORKER_SILENT_CAUSE })
    expect(h.ends().has('n4')).toBe(false) // pending, not started: its worker may never have been asked
    h.feed(h.run.sweep({ workerOffline: () => false, hiveGone: (hive) => hive === 'hive-eu' }, 0))
    expect(h.ends().has('n3')).toBe(false)
  })

  it('stores the deadline of 20,000 silent nodes in some bytes per node id, not a grace each', () => {
    const h = new Harness(request({ timeoutMs: 5000, concurrency: 20_000 }), targets(20_000))
    h.acceptShares()
    for (let i = 1; i <= 20_000; i++) h.event(started(`n${i}`))
    h.feed(h.run.sweep({ workerOffline: () => true, hiveGone: () => false }, 0))
    const graces = h.run.snapshot().graces
    expect(graces).toHaveLength(1)
    // The ids themselves (n1..n20000, 8.9 bytes each with their quotes and commas) and one pair of causes.
    expect(JSON.stringify(graces).length).toBeLessThan(20_000 * 9 + 1024)
  })

  it('keeps a silent worker’s deadline across a restore from the snapshot', () => {
    const h = new Harness(request({ timeoutMs: 5000 }), targets(1))
    h.acceptShares().event(started('n1'))
    h.feed(h.run.sweep({ workerOffline: () => true, hiveGone: () => false }, 0))
    const { run } = JobRun.restore(
      { id: 'j1', request: h.run.request, createdAt: 0, cancelGraceMs: GRACE },
      JSON.parse(JSON.stringify(h.run.snapshot())),
      [{ node: 'n1', region: 'eu', state: 'running', agentless: false, exitCode: null, digest: null, cause: null }],
      100,
    )
    // Swept again on the new leader: no second deadline.
    run.sweep({ workerOffline: () => true, hiveGone: () => false }, 1000)
    expect(run.snapshot().graces.filter((g) => g.nodes?.includes('n1'))).toHaveLength(1)
    const ends = run.tick(5000 + GRACE).flatMap((e) => (e.type === 'emit' && e.event.kind === 'node.finished' ? [[e.event.node, e.event.state]] : []))
    expect(ends).toEqual([['n1', 'lost']])
  })

  describe('a share whose hive is gone', () => {
    const gone = (dead: string) => ({ workerOffline: () => false, hiveGone: (hive: string) => hive === dead })

    it('is offered again with its open nodes only, as the next attempt, and the standby holds it', () => {
      const h = new Harness(request(), targets(6, { region: 'eu' }))
      h.acceptShares('hive-a')
      h.event(finished('n1', 'ok')).event(started('n2'))
      const before = h.shares().length
      h.feed(h.run.sweep(gone('hive-a'), 10))
      const re = h.shares().slice(before)
      expect(re).toHaveLength(1)
      expect(re[0]).toMatchObject({ phase: 0, attempt: 1, region: 'eu', nodes: ['n2', 'n3', 'n4', 'n5', 'n6'] })
      // Not offered twice while the offer is on its way, and the answer to the old one is history.
      h.feed(h.run.sweep(gone('hive-a'), 11))
      expect(h.shares().length).toBe(before + 1)
      h.feed(h.run.onShare(re[0]!, { accepted: true, by: 'hive-b' }, 12))
      expect(h.events('job.region').at(-1)).toMatchObject({ hive: 'hive-b', nodes: 5 })
      h.feed(h.run.sweep(gone('hive-a'), 13))
      expect(h.shares().length).toBe(before + 1)
      expect(h.ends().size).toBe(1)
    })

    it('says a verdict of the earlier attempt is stale once the share was offered again, not before', () => {
      const h = new Harness(request(), targets(3, { region: 'eu' }))
      h.acceptShares('hive-a')
      expect(h.run.reofferedSince('n2', 0)).toBe(false)
      h.feed(h.run.sweep(gone('hive-a'), 10))
      expect(h.run.reofferedSince('n2', 0)).toBe(true)
      expect(h.run.reofferedSince('n2', 1)).toBe(false)
      expect(h.run.reofferedSince('not-a-target', 0)).toBe(false)
    })

    it('is tried again when no hive takes it, then its pending nodes are skipped and its running ones wait for their deadline', () => {
      const h = new Harness(request({ timeoutMs: 2000 }), targets(3, { region: 'eu' }))
      h.acceptShares('hive-a')
      h.event(started('n1'))
      let t = 10
      for (let i = 0; i < 3; i++) {
        h.feed(h.run.sweep(gone('hive-a'), t))
        const offer = h.shares().at(-1)!
        expect(offer.attempt).toBe(i + 1)
        h.feed(h.run.onShare(offer, { accepted: false, cause: 'no hive for region eu' }, t))
        t += 5000
      }
      expect(h.ends().get('n2')).toEqual({ state: 'skipped', cause: 'not dispatched: no hive of region eu took the share over (no hive for region eu)' })
      expect(h.ends().has('n1')).toBe(false)
      h.event(finished('n1', 'ok'))
      expect(h.ends().get('n1')?.state).toBe('ok')
      expect(h.run.finished).toBe(true)
    })
  })

  it('offers nothing again for a stopped job whose hive is gone: what never started ends skipped, what runs has until its deadline', () => {
    const h = new Harness(request({ timeoutMs: 2000 }), targets(3, { region: 'eu' }))
    h.acceptShares('hive-a')
    h.event(started('n1'))
    h.feed(h.run.cancel('by request', 5))
    const before = h.shares().length
    h.feed(h.run.sweep({ workerOffline: () => false, hiveGone: (hive) => hive === 'hive-a' }, 10))
    expect(h.shares().length).toBe(before)
    expect(h.ends().get('n2')).toEqual({ state: 'skipped', cause: 'not dispatched: by request' })
    expect(h.ends().has('n1')).toBe(false)
  })

  describe('restored from its snapshot by another queen', () => {
    const restoreFrom = (h: Harness, now: number) => {
      const nodes = [...h.ends().keys()]
      void nodes
      const states = new Map<string, 'pending' | 'running' | FinalState>()
      for (const ev of h.events()) {
        if (ev.kind === 'node.started') states.set(ev.node, 'running')
        if (ev.kind === 'node.finished') states.set(ev.node, ev.state)
      }
      return JobRun.restore(
        { id: 'j1', request: h.run.request, createdAt: 0, cancelGraceMs: GRACE },
        JSON.parse(JSON.stringify(h.run.snapshot())),
        targets(4).map((t) => ({ node: t.id, region: t.region, state: states.get(t.id) ?? 'pending', agentless: false, exitCode: null, digest: null, cause: null })),
        now,
      )
    }

    it('goes on where it was: no halt, shares keep their hives, the canary judged and the rest dispatched', () => {
      const h = new Harness(request({ canary: 2, deadlineMs: 60_000 }), targets(4))
      h.acceptShares()
      h.event(finished('n1', 'ok'))
      const { run, effects } = restoreFrom(h, 100)
      expect(run.stop).toEqual({ kind: 'dispatching' })
      expect(effects.filter((e) => e.type === 'dispatch' || e.type === 'control')).toEqual([])
      expect(run.nextWake()).toBe(60_000)
      const more = run.onEvent(finished('n2', 'ok'), 200)
      const shares = more.flatMap((e) => (e.type === 'dispatch' ? [e.share] : []))
      expect(shares.map((s) => [s.phase, s.attempt, s.nodes])).toEqual([
        [1, 0, ['n3']],
        [1, 0, ['n4']],
      ])
    })

    it('offers again, at its first sweep, a share no hive had taken yet', () => {
      const h = new Harness(request(), targets(4))
      const { run } = restoreFrom(h, 100)
      const offers = run.sweep({ workerOffline: () => false, hiveGone: () => false }, 100).flatMap((e) => (e.type === 'dispatch' ? [e.share] : []))
      expect(offers.map((s) => [s.region, s.attempt, s.nodes])).toEqual([
        ['eu', 1, ['n1', 'n3']],
        ['us', 1, ['n2', 'n4']],
      ])
    })

    it('keeps a stop, its control and its grace', () => {
      const h = new Harness(request(), targets(4))
      h.acceptShares()
      h.event(started('n1'))
      h.feed(h.run.cancel('by request', 50))
      const { run } = restoreFrom(h, 100)
      expect(run.stop).toEqual({ kind: 'cancelled', reason: 'by request' })
      expect(run.nextWake()).toBe(50 + GRACE)
      const ends = run.tick(50 + GRACE).flatMap((e) => (e.type === 'emit' && e.event.kind === 'node.finished' ? [e.event.state] : []))
      expect(ends.sort()).toEqual(['lost', 'skipped', 'skipped', 'skipped'])
    })
  })

  it('takes one final state per node: events after a node ended, for strangers or of job kinds are dropped', () => {
    const h = new Harness(request(), targets(2))
    h.event(finished('n1', 'ok'))
    const n = h.events().length
    h.event(finished('n1', 'failed')).event(started('n1')).event(started('ghost'))
    h.event({ jobId: 'j1', ts: 0, kind: 'job.halted', reason: 'forged', human: '' })
    expect(h.events().length).toBe(n)
    expect(h.effects.filter((e) => e.type === 'note' && e.level !== 'info').map((e) => (e.type === 'note' ? e.msg : ''))).toEqual([
      'dropped an event after the node ended',
      'dropped an event after the node ended',
      'dropped an event for a node that is not a target',
      'dropped a job event only the queen may emit',
    ])
    expect(h.run.state('n1')).toBe('ok')
  })

  describe('output a node sends', () => {
    const kept = (h: Harness, node = 'n1') => h.events('node.output').flatMap((e) => (e.kind === 'node.output' && e.node === node ? [e.data] : [])).join('')
    const warnings = (h: Harness) => h.effects.filter((e) => e.type === 'note' && e.level === 'warn')

    it("keeps at most the job's cap per node, in bytes as stored; the rest is dropped and noted once per node", () => {
      const h = new Harness(request({}, 4096), targets(2))
      h.event(started('n1')).event(started('n2'))
      for (let i = 0; i < 20; i++) h.event(output('n1', `${String(i % 10).repeat(999)}\n`))
      h.event(output('n2', 'fine\n'))
      expect(Buffer.byteLength(kept(h, 'n1'))).toBe(4096)
      expect(kept(h, 'n1')).toBe(Array.from({ length: 5 }, (_, i) => `${String(i).repeat(999)}\n`).join('').slice(0, 4096))
      expect(kept(h, 'n2')).toBe('fine\n')
      expect(warnings(h)).toEqual([{ type: 'note', level: 'warn', msg: "dropped output past the job's cap", fields: { node: 'n1', capBytes: 4096, maxEvents: 1024 } }])
      const cut = h.events('node.output').at(-2)!
      expect(cut).toMatchObject({ node: 'n1', data: '4'.repeat(96), human: `n1 | ${'4'.repeat(96)}` })
      // Every event the run emits is one the contract takes (but for the test's short job id).
      for (const ev of h.events()) expect(WireEvent.safeParse({ ...ev, jobId: 'j0000001' }).error).toBeUndefined()
    })

    it("writes every node's line itself: a producer's words cannot pose as the queen's narration", () => {
      const h = new Harness(request({}, 1024), targets(2))
      h.event({ ...started('n1'), human: 'job jfake ok in 1.2 s: 6 ok' })
      h.event({ ...(finished('n1', 'failed') as WireEventOf<'node.finished'>), exitCode: 1, durationMs: 5, human: 'n1: ok (exit 0)' })
      h.event({ ...(finished('n2', 'skipped') as WireEventOf<'node.finished'>), durationMs: null, cause: 'not dispatched: halted', human: 'HIVE says all ok' })
      expect(h.events().filter((e) => e.kind.startsWith('node.')).map((e) => e.human)).toEqual(['n1: started', 'n1: failed: boom (exit 1, 5 ms)', 'n2: skipped: not dispatched: halted'])
    })

    it("writes each output line itself from what it kept: a producer's oversized narration is not stored", () => {
      const h = new Harness(request({}, 1024), targets(1))
      h.event(started('n1')).event({ jobId: 'j1', ts: 0, kind: 'node.output', node: 'n1', stream: 'stdout', data: 'x', human: 'y'.repeat(128 * 1024) })
      expect(h.events('node.output').map((e) => e.human)).toEqual(['n1 | x'])
    })

    it('says truncated on the stored node when the queen cut, whatever the producer said', () => {
      const h = new Harness(request({}, 1024), targets(2))
      h.event(started('n1')).event(output('n1', 'x'.repeat(2000))).event(finished('n1', 'ok')).event(finished('n2', 'ok'))
      const updates = h.effects.flatMap((e) => (e.type === 'emit' && e.event.kind === 'node.finished' ? [[e.event.node, e.node?.update.truncated]] : []))
      expect(updates).toEqual([
        ['n1', true],
        ['n2', false],
      ])
    })

    it('never keeps half a character', () => {
      const h = new Harness(request({}, 1024), targets(1))
      h.event(output('n1', 'é'.repeat(300))).event(output('n1', '€'.repeat(300)))
      const text = kept(h)
      expect(text).toBe('é'.repeat(300) + '€'.repeat(141))
      expect(Buffer.byteLength(text)).toBe(1023)
    })

    it('keeps at most maxOutputEvents chunks of a node, and drops empty ones', () => {
      expect(maxOutputEvents(1024)).toBe(1024)
      expect(maxOutputEvents(1024 * 1024)).toBe(65_536)
      const h = new Harness(request({}, 64 * 1024), targets(1))
      for (let i = 0; i < 100; i++) h.event(output('n1', ''))
      expect(h.events('node.output')).toEqual([])
      for (let i = 0; i < 5000; i++) h.event(output('n1', 'y'))
      expect(h.events('node.output')).toHaveLength(maxOutputEvents(64 * 1024))
      expect(warnings(h)).toHaveLength(1)
    })
  })

  it('takes one node.started per node: a repeated one would only grow the log', () => {
    const h = new Harness(request(), targets(1))
    h.event(started('n1')).event(started('n1')).event(started('n1'))
    expect(h.events('node.started')).toHaveLength(1)
    expect(h.run.state('n1')).toBe('running')
  })

  it('the counts of job.finished always add up to the targets', () => {
    const t = targets(20)
    t[0]!.online = false
    const h = new Harness(request({ maxErrors: 3, canary: 4, deadlineMs: 10_000 }), t)
    h.acceptShares()
    h.event(started('n2')).event(finished('n2', 'ok')).event(finished('n3', 'ok')).event(started('n4'))
    h.at(10_000).at(10_000 + GRACE)
    const fin = h.finishedEvent()
    expect(Object.values(fin.counts).reduce((a, b) => a + b, 0)).toBe(20)
    expect(fin.groups.reduce((a, g) => a + g.count, 0)).toBe(20)
  })

  describe('resumed after a restart', () => {
    const resume = (states: Array<[string, 'pending' | 'running' | FinalState]>, now = 100) =>
      JobRun.resume(
        { id: 'j1', request: request({ timeoutMs: 2000 }), createdAt: 0, cancelGraceMs: GRACE },
        states.map(([node, state]) => ({ node, region: 'eu', state, agentless: false, exitCode: null, digest: null, cause: null })),
        now,
      )

    it('halts dispatching, lets running nodes report, and ends the silent after their deadline', () => {
      const { run, effects } = resume([
        ['a', 'ok'],
        ['b', 'running'],
        ['c', 'pending'],
        ['d', 'running'],
      ])
      expect(run.stop).toEqual({ kind: 'halted', reason: 'the queen restarted' })
      expect(effects.filter((e) => e.type === 'dispatch')).toEqual([])
      expect(run.nextWake()).toBe(100 + 2000 + GRACE)
      const later = run.onEvent(finished('b', 'ok'), 500)
      expect(later.some((e) => e.type === 'emit' && e.event.kind === 'node.finished')).toBe(true)
      const end = run.tick(100 + 2000 + GRACE)
      const states = end.flatMap((e) => (e.type === 'emit' && e.event.kind === 'node.finished' ? [[e.event.node, e.event.state, e.event.cause]] : []))
      expect(states).toEqual([
        ['c', 'skipped', 'not dispatched: the queen restarted'],
        ['d', 'lost', 'no result after the queen restarted'],
      ])
      expect(run.finished).toBe(true)
    })

    it('finishes at once a job whose nodes had all ended', () => {
      const { run, effects } = resume([
        ['a', 'ok'],
        ['b', 'failed'],
      ])
      expect(run.finished).toBe(true)
      expect(effects.some((e) => e.type === 'finished')).toBe(true)
      expect(effects.some((e) => e.type === 'control')).toBe(false)
    })
  })
})
