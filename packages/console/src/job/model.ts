import type { JobDetail, JobEvent, JobState, ResultGroup } from '@apiary/shared'
import { NOT_OK, type State, STATES } from '../format.ts'

const CODE = new Map<string, number>(STATES.map((s, i) => [s, i]))
const PENDING = CODE.get('pending')!
const RUNNING = CODE.get('running')!
const FINAL_FROM = CODE.get('running')!
const NOT_OK_CODES = new Set(NOT_OK.map((s) => CODE.get(s)!))
/** Finishes within this window of event time make the rate. */
const RATE_WINDOW_MS = 10_000
/** Nodes named per result group: the first few, in target order. */
const GROUP_SAMPLE = 5

export interface Progress {
  total: number
  done: number
  ok: number
  notOk: number
  running: number
  pending: number
  /** Nodes finished per second lately (over the whole job once it ended); null before any. */
  rate: number | null
  /** Time left at that rate; null when unknown or done. */
  etaMs: number | null
}

export interface Group {
  state: State
  exitCode: number | null
  cause: string | null
  count: number
  /** The first few nodes of the group (up to five), in target order. */
  sample: string[]
}

/** A result group as the model keeps it, updated as nodes end. */
interface GroupSlot {
  key: string
  state: State
  exitCode: number | null
  cause: string | null
  count: number
  /** The group's first GROUP_SAMPLE slots, ascending; short of them when `stale`. */
  sample: number[]
  /** A sampled node left the group: `groups()` finds its first nodes again. */
  stale: boolean
}

export interface Histogram {
  /** Lower edge of each bin, ms; bins are equal in width. */
  edges: number[]
  width: number
  counts: number[]
  max: number
  slowest: Array<{ node: string; durationMs: number }>
}

/**
 * One job's nodes as the console shows them, kept in flat typed arrays indexed by target
 * order: 10,000 nodes are a few hundred KiB, and an event touches one slot. The painter asks
 * which slots changed since it last drew (`takeDirty`), so a burst of events is drawn once
 * per frame.
 */
export class JobModel {
  readonly id: string
  readonly ids: string[]
  readonly #index = new Map<string, number>()
  /** Index into STATES per node. */
  readonly state: Uint8Array
  readonly exitCode: Array<number | null>
  readonly durationMs: Float64Array
  readonly digest: Array<string | null>
  readonly cause: Array<string | null>
  readonly signal: Array<string | null>
  readonly #counts: number[]
  jobState: JobState
  lastSeq: number
  stopReason: string | null
  createdAt: number
  finishedAt: number | null
  /** The queen's groups once `job.finished` came; before, the console groups itself. */
  finalGroups: ResultGroup[] | null = null
  readonly #dirty: number[] = []
  readonly #marked: Uint8Array
  #all = true
  /** [event time, nodes done] at each finish lately: those from `#finishHead` on. */
  #finishes: Array<[number, number]> = []
  #finishHead = 0
  #done = 0
  /** Result groups by key, kept as nodes end: 10,000 keys built once a second cost more than the rest of the page's script. */
  readonly #groups = new Map<string, GroupSlot>()
  readonly #groupOf: Array<GroupSlot | undefined>
  /** Bumped on every change, so views can tell when to recompute what they derive. */
  version = 0

  constructor(detail: JobDetail) {
    const n = detail.nodes.length
    this.id = detail.id
    this.ids = detail.nodes.map((r) => r.node)
    this.state = new Uint8Array(n).fill(PENDING)
    this.exitCode = new Array<number | null>(n).fill(null)
    this.durationMs = new Float64Array(n).fill(Number.NaN)
    this.digest = new Array<string | null>(n).fill(null)
    this.cause = new Array<string | null>(n).fill(null)
    this.signal = new Array<string | null>(n).fill(null)
    this.#marked = new Uint8Array(n)
    this.#groupOf = new Array<GroupSlot | undefined>(n)
    this.#counts = new Array<number>(STATES.length).fill(0)
    this.#counts[PENDING] = n
    this.jobState = detail.state
    this.lastSeq = detail.lastSeq
    this.stopReason = detail.stopReason
    this.createdAt = detail.createdAt
    this.finishedAt = detail.finishedAt
    detail.nodes.forEach((r, i) => {
      this.#index.set(r.node, i)
      this.#set(i, r.state)
      this.exitCode[i] = r.exitCode
      this.durationMs[i] = r.durationMs ?? Number.NaN
      this.digest[i] = r.digest
      this.cause[i] = r.cause
      this.signal[i] = r.signal
      this.#regroup(i)
    })
  }

  get size(): number {
    return this.ids.length
  }

  indexOf(node: string): number {
    return this.#index.get(node) ?? -1
  }

  stateAt(i: number): State {
    return STATES[this.state[i]!]!
  }

  count(state: State): number {
    return this.#counts[CODE.get(state)!]!
  }

  /** Applies one event of the job's stream; answers whether anything shown changed. */
  apply(ev: JobEvent): boolean {
    if (ev.seq <= this.lastSeq) return false
    this.lastSeq = ev.seq
    switch (ev.kind) {
      case 'node.started': {
        const i = this.indexOf(ev.node)
        if (i < 0 || this.state[i]! < FINAL_FROM) return false
        if (this.state[i] === RUNNING) return false
        this.#set(i, 'running')
        break
      }
      case 'node.finished': {
        const i = this.indexOf(ev.node)
        if (i < 0) return false
        this.#set(i, ev.state)
        this.exitCode[i] = ev.exitCode
        this.durationMs[i] = ev.durationMs ?? Number.NaN
        this.digest[i] = ev.digest
        this.cause[i] = ev.cause
        this.signal[i] = ev.signal
        this.#regroup(i)
        this.#finishes.push([ev.ts, this.#done])
        this.#forgetFinishes(ev.ts - RATE_WINDOW_MS)
        break
      }
      case 'job.halted':
      case 'job.cancelling':
        this.stopReason = ev.reason
        break
      case 'job.finished':
        this.jobState = ev.state
        this.stopReason = ev.stopReason
        this.finalGroups = ev.groups
        this.finishedAt = ev.ts
        break
      default:
        return false
    }
    this.version++
    return true
  }

  /** Slots whose state changed since the last call; `all` after construction (draw everything). */
  takeDirty(): { all: boolean; slots: number[] } {
    const all = this.#all
    const slots = this.#dirty.splice(0)
    if (all) this.#marked.fill(0)
    else for (const i of slots) this.#marked[i] = 0
    this.#all = false
    return { all, slots: all ? [] : slots }
  }

  progress(): Progress {
    const total = this.size
    const running = this.count('running')
    const pending = this.count('pending')
    const done = total - running - pending
    let notOk = 0
    for (const s of NOT_OK) notOk += this.count(s)
    let rate: number | null = null
    if (this.finishedAt !== null && this.jobState !== 'running') {
      const span = this.finishedAt - this.createdAt
      rate = span > 0 ? (done * 1000) / span : null
    } else if (this.#finishes.length - this.#finishHead >= 2) {
      const [t0, d0] = this.#finishes[this.#finishHead]!
      const [t1, d1] = this.#finishes[this.#finishes.length - 1]!
      rate = t1 > t0 ? ((d1 - d0) * 1000) / (t1 - t0) : null
    }
    const left = total - done
    const etaMs = left > 0 && rate !== null && rate > 0 && this.jobState === 'running' ? (left / rate) * 1000 : null
    return { total, done, ok: this.count('ok'), notOk, running, pending, rate, etaMs }
  }

  /**
   * Nodes with the same result, largest first: the queen's grouping key (state, exit code,
   * output digest, cause; `resultGroupKey`), over the nodes that have ended. Kept as events
   * arrive, so this sorts the groups and walks no node (unless a sampled node changed group).
   */
  groups(): Group[] {
    if ([...this.#groups.values()].some((g) => g.stale)) this.#resample()
    return [...this.#groups.values()]
      .sort((a, b) => b.count - a.count || a.state.localeCompare(b.state) || a.sample[0]! - b.sample[0]!)
      .map((g) => ({ state: g.state, exitCode: g.exitCode, cause: g.cause, count: g.count, sample: g.sample.map((i) => this.ids[i]!) }))
  }

  /** Durations of the nodes that ran, in `bins` equal bins, and the `top` slowest. */
  histogram(bins = 24, top = 10): Histogram {
    let min = Infinity
    let max = -Infinity
    for (let i = 0; i < this.size; i++) {
      const d = this.durationMs[i]!
      if (Number.isNaN(d)) continue
      if (d < min) min = d
      if (d > max) max = d
    }
    if (min === Infinity) return { edges: [], width: 0, counts: [], max: 0, slowest: [] }
    const width = Math.max(1, (max - min) / bins)
    const counts = new Array<number>(bins).fill(0)
    // The slowest `top`, kept sorted descending: O(n · top), no sort of every node.
    const slowest: Array<{ node: string; durationMs: number }> = []
    for (let i = 0; i < this.size; i++) {
      const d = this.durationMs[i]!
      if (Number.isNaN(d)) continue
      counts[Math.min(bins - 1, Math.floor((d - min) / width))]!++
      if (slowest.length < top || d > slowest[slowest.length - 1]!.durationMs) {
        let at = slowest.findIndex((s) => d > s.durationMs)
        if (at < 0) at = slowest.length
        slowest.splice(at, 0, { node: this.ids[i]!, durationMs: d })
        if (slowest.length > top) slowest.pop()
      }
    }
    return { edges: counts.map((_, b) => min + b * width), width, counts, max: Math.max(...counts), slowest }
  }

  /** Whether node `i` ended not ok. */
  notOkAt(i: number): boolean {
    return NOT_OK_CODES.has(this.state[i]!)
  }

  /**
   * Drops the finishes before `since` but the last two. An index moves, and the array is cut
   * once half of it is behind. shift() per finish copies the whole array once it is large (in
   * node's V8, emptying one of 12,000 so took 9 ms, of 20,000 40 ms), and a finish after a
   * pause of the job shifts every older one out in one event: 150 ms of one task at 50,000 nodes.
   */
  #forgetFinishes(since: number): void {
    const f = this.#finishes
    let h = this.#finishHead
    while (f.length - h > 2 && f[h]![0] < since) h++
    if (h > 1024 && h * 2 > f.length) {
      this.#finishes = f.slice(h)
      h = 0
    }
    this.#finishHead = h
  }

  /** Moves node `i` to the group its result now makes (none while it has not ended). */
  #regroup(i: number): void {
    const was = this.#groupOf[i]
    const code = this.state[i]!
    const key = code >= FINAL_FROM ? null : `${code}\u0000${this.exitCode[i] ?? ''}\u0000${this.digest[i] ?? ''}\u0000${this.cause[i] ?? ''}`
    if (was?.key === key) return
    if (was) {
      this.#groupOf[i] = undefined
      if (--was.count === 0) this.#groups.delete(was.key)
      else {
        const at = was.sample.indexOf(i)
        if (at >= 0) {
          was.sample.splice(at, 1)
          if (was.count > was.sample.length) was.stale = true
        }
      }
    }
    if (key === null) return
    let g = this.#groups.get(key)
    if (!g) this.#groups.set(key, (g = { key, state: STATES[code]!, exitCode: this.exitCode[i]!, cause: this.cause[i]!, count: 0, sample: [], stale: false }))
    g.count++
    this.#groupOf[i] = g
    const s = g.sample
    if (s.length < GROUP_SAMPLE || i < s[s.length - 1]!) {
      let at = s.length
      while (at > 0 && s[at - 1]! > i) at--
      s.splice(at, 0, i)
      if (s.length > GROUP_SAMPLE) s.pop()
    }
  }

  /** Finds the first nodes again of the groups a sampled node left: one walk over the nodes. */
  #resample(): void {
    for (const g of this.#groups.values()) if (g.stale) g.sample = []
    for (let i = 0; i < this.size; i++) {
      const g = this.#groupOf[i]
      if (g?.stale && g.sample.length < GROUP_SAMPLE) g.sample.push(i)
    }
    for (const g of this.#groups.values()) g.stale = false
  }

  #set(i: number, state: string): void {
    const code = CODE.get(state)
    if (code === undefined) return
    const was = this.state[i]!
    const wasFinal = was < FINAL_FROM
    this.#counts[was]!--
    this.#counts[code]!++
    this.state[i] = code
    const isFinal = code < FINAL_FROM
    if (isFinal && !wasFinal) this.#done++
    if (!isFinal && wasFinal) this.#done--
    if (!this.#marked[i]) {
      this.#marked[i] = 1
      this.#dirty.push(i)
    }
  }
}
