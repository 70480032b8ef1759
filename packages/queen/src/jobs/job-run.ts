import {
  clip,
  type ControlOrder as Control,
  describeOperation,
  type FinalState,
  type HiveJob,
  isFinal,
  type JobRequestView,
  type JobState,
  MAX_HUMAN,
  type NodeState,
  finishedLine,
  notRunEvent,
  prefixLines,
  resolveCount,
  spendsErrorBudget,
  unfoldStart,
  type WireEvent,
  type WireEventOf,
} from '@apiary/shared'
import type { JobEnd, NodeUpdate } from '../store/store.ts'
import { countsLine, durationText } from './human.ts'
import { type Gap, type NodeEvent, NodeOrder, ORDER_LIMITS, type OrderSnapshot } from './node-order.ts'
import { groupResults, type NodeOutcome } from './result-groups.ts'

/** A resolved target as the run needs it. */
export interface RunTarget {
  id: string
  region: string
  online: boolean
  /** Its worker drains (told to stop): it takes no new task, so the node is not dispatched. */
  draining?: boolean
  /** Reached over SSH by the region's SSH workers. */
  agentless: boolean
}

/** Why a target whose worker drains ends `error` without being dispatched. */
export const DRAINING_CAUSE = 'draining: its worker was told to stop and takes no new task'

/** A node of a job that was running when the queen stopped, as stored. */
export interface ResumedNode extends NodeOutcome {
  node: string
  region: string
  agentless: boolean
}

/** What the hive that was offered a share answered. */
export type ShareOutcome = { accepted: true; by: string } | { accepted: false; cause: string }

/**
 * How dispatching stands. It only moves forward: dispatching → halted (what runs finishes,
 * nothing more starts) → timing out (the job deadline stops what runs: `timeout`) → cancelled
 * (what runs is killed: `cancelled`). `reason` is the first reason, the one the job reports.
 */
export type StopState =
  | { kind: 'dispatching' }
  | { kind: 'halted'; reason: string }
  | { kind: 'timing-out'; reason: string }
  | { kind: 'cancelled'; reason: string }

/**
 * A region's share as the run hands it out: without the operation, which the run holds only as
 * its view (no env values, no stdin). The caller joins the whole operation to it to dispatch.
 */
export type ShareOrder = Omit<HiveJob, 'operation'>

/** What the run asks the world to do; the caller carries effects out in order. */
export type Effect =
  | { type: 'emit'; event: WireEvent; node?: { node: string; update: NodeUpdate } }
  | { type: 'dispatch'; share: ShareOrder }
  | { type: 'control'; control: Control }
  | { type: 'finished'; end: JobEnd }
  | { type: 'note'; level: 'debug' | 'info' | 'warn'; msg: string; fields?: Record<string, unknown> }

interface NodeEntry extends NodeOutcome {
  region: string
  /** Index of the phase the node belongs to (0 = canary when there is one). */
  phase: number
  agentless: boolean
}

/**
 * Nodes nobody has confirmed by `at` end: never dispatched → `skipped`, started → `lost`.
 * Every open node of the job, only those of one region's share of one phase, or the nodes listed.
 */
export interface Grace {
  at: number
  skipped: string
  lost: string
  share?: { region: string; phase: number }
  /** The running nodes whose worker a sweep found silent (one grace per sweep, not per node). */
  nodes?: string[]
}

/**
 * Why a running node whose worker stopped heartbeating ends `lost`, once its result deadline
 * passed with the worker still silent: before it, the worker may only be paused or cut off.
 */
export const WORKER_SILENT_CAUSE = 'worker stopped heartbeating and sent no result by its deadline'

/**
 * One region's share of one phase, as the queen tracks who holds it. `attempt` counts the
 * offers (a re-offer of its open nodes when its hive is gone); `hive` is the hive that took
 * the latest, null while none has. Held as long as that hive heartbeats: the heartbeat is the lease.
 */
export interface ShareState {
  region: string
  phase: number
  attempt: number
  hive: string | null
  /** Failed re-offers in a row; after `MAX_REOFFER_FAILURES` the share's open nodes end. */
  failures: number
  /** When an unheld share is offered again (0: at the next sweep; null: not again, or an offer is on its way). */
  retryAt: number | null
}

/** Everything of a run that its events and nodes do not say: stored with each commit, so another queen continues it. */
export interface RunSnapshot {
  v: 1
  nextPhase: number
  stop: StopState
  control: Control | null
  deadlineAt: number | null
  graces: Grace[]
  shares: ShareState[]
  /** Where each running node's events stand in their task's order, and those held (absent before it was kept). */
  order?: OrderSnapshot
}

/** How many re-offers of a share may fail in a row before its open nodes end. */
export const MAX_REOFFER_FAILURES = 3
/** How long after a failed re-offer the next is tried. */
export const REOFFER_RETRY_MS = 5000

export interface JobRunConfig {
  id: string
  /** Its operation as a view: the run never holds env values or stdin, nor puts them in an event or a snapshot. */
  request: JobRequestView
  createdAt: number
  /** After a cancel or the job deadline, how long to wait for confirmations before closing anyway. */
  cancelGraceMs: number
  /** How long after a failed re-offer of a share the next is tried (default `REOFFER_RETRY_MS`). */
  reofferRetryMs?: number
}

/** What the queen has kept of one node's output, while the node runs. */
interface OutputKept {
  bytes: number
  events: number
  /** Some was dropped: past the job's cap, or past the most chunks a node may send. */
  cut: boolean
}

/**
 * The most `node.output` events the queen keeps of one node: one per 16 bytes of the cap
 * (1,024 at least). A worker sends a chunk per read of whole lines, so only a producer that
 * sends a byte at a time reaches this before the cap; each event costs a row in the log.
 */
export function maxOutputEvents(outputCapBytes: number): number {
  return Math.max(1024, Math.ceil(outputCapBytes / 16))
}

const utf8 = new TextEncoder()

/** The longest start of `text` that takes at most `bytes` bytes as UTF-8 (never half a character). */
function utf8Prefix(text: string, bytes: number): string {
  return text.slice(0, utf8.encodeInto(text, new Uint8Array(bytes)).read)
}

/** What the run needs to know of presence when it sweeps. */
export interface PresenceView {
  /** A known worker that stopped heartbeating (unknown ones are not offline: nobody said so). */
  workerOffline(node: string): boolean
  /** A hive that stopped heartbeating, or was never heard since this queen took over and long enough has passed. */
  hiveGone(hive: string): boolean
}

/** The node of a resumed job as the index holds it, in target order. */
export interface RestoredNode extends ResumedNode {
  /** Output the queen kept of it so far (a running node's cap goes on counting). */
  kept?: { bytes: number; events: number }
}

/**
 * One job's policy as pure state: phases and the canary, the error budget, the deadline,
 * halt and cancel, who ends how, and the job's end. It takes events and the time and returns
 * effects; it does no I/O and reads no clock, so "why did node X end skipped?" is answered
 * here alone, and tested without a bus or a timer.
 *
 * @example
 * const { run, effects } = JobRun.submit(cfg, targets, {}, Date.now())
 * execute(effects); execute(run.onEvent(ev, Date.now()))
 */
export class JobRun {
  readonly id: string
  readonly request: JobRequestView
  readonly createdAt: number
  readonly #cancelGraceMs: number
  readonly #reofferRetryMs: number
  readonly #nodes = new Map<string, NodeEntry>()
  /** Output kept so far, of the nodes that sent some and have not ended. */
  readonly #output = new Map<string, OutputKept>()
  readonly #counts = new Map<NodeState, number>()
  #open = 0
  /** Nodes of the whole job that spent the error budget. */
  #errors = 0
  #maxErrors: number | null = null
  /** [canary, rest] or [all]; `#nextPhase` is the next to hand to the hives. */
  #phases: string[][] = []
  #nextPhase = 0
  #stop: StopState = { kind: 'dispatching' }
  /** The last control sent, sent again to a hive that takes a share after it. */
  #control: Control | null = null
  #deadlineAt: number | null = null
  #graces: Grace[] = []
  /** Running nodes whose worker went silent, each with a grace of its own (in `#graces`). */
  readonly #silent = new Set<string>()
  #shares: ShareState[] = []
  #finished = false
  #out: Effect[] = []
  /** Each node's events in their task's order. */
  #order: NodeOrder

  private constructor(cfg: JobRunConfig, order?: OrderSnapshot) {
    this.id = cfg.id
    this.request = cfg.request
    this.createdAt = cfg.createdAt
    this.#cancelGraceMs = cfg.cancelGraceMs
    this.#reofferRetryMs = cfg.reofferRetryMs ?? REOFFER_RETRY_MS
    // An event missing from its task's order was published before the one held, and is retried
    // through the outage that delayed it: it comes within the task's limit, or is given up.
    this.#order = new NodeOrder({ ...ORDER_LIMITS, holdMs: cfg.request.rollout.timeoutMs + cfg.cancelGraceMs }, order)
  }

  /** A new job: announces it, ends offline targets, and hands the first phase to the hives. */
  static submit(cfg: JobRunConfig, targets: RunTarget[], opts: { rerunOf?: string }, now: number): { run: JobRun; effects: Effect[] } {
    const run = new JobRun(cfg)
    const { rollout, operation } = cfg.request
    const phaseOf = run.#planPhases(targets.map((t) => t.id))
    targets.forEach((t, i) => run.#setNode(t.id, { region: t.region, state: 'pending', phase: phaseOf(i), agentless: t.agentless, exitCode: null, digest: null, cause: null }))
    const n = targets.length
    run.#emit({
      jobId: run.id,
      ts: now,
      kind: 'job.submitted',
      operation,
      targets: cfg.request.targets,
      rollout,
      nodes: n,
      human: clip(`job ${run.id}: ${describeOperation(operation)} on ${n} node${n === 1 ? '' : 's'} (targets ${opts.rerunOf ? `re-run of ${opts.rerunOf}` : cfg.request.targets})`, MAX_HUMAN),
    })
    for (const t of targets) if (!t.online || t.draining) run.#finishNode(t.id, 'error', t.online ? DRAINING_CAUSE : 'offline', now)
    if (rollout.deadlineMs !== undefined) run.#deadlineAt = cfg.createdAt + rollout.deadlineMs
    if (!run.#finished) run.#dispatchNextPhase(now)
    return { run, effects: run.#take() }
  }

  /**
   * A job that was running when the queen stopped and whose state was stored with its commits
   * (`snapshot`): it goes on where it was. Shares keep their hives; a share whose hive is gone
   * (or that no hive had taken yet) is offered again at the next sweep, and workers answer
   * the nodes they already ran with what they did. `nodes` in target order.
   */
  static restore(cfg: JobRunConfig, snapshot: RunSnapshot, nodes: RestoredNode[], now: number): { run: JobRun; effects: Effect[] } {
    const run = new JobRun(cfg, snapshot.order)
    const phaseOf = run.#planPhases(nodes.map((n) => n.node))
    nodes.forEach((n, i) => {
      run.#setNode(n.node, { region: n.region, state: n.state, phase: phaseOf(i), agentless: n.agentless, exitCode: n.exitCode, digest: n.digest, cause: n.cause })
      if (spendsErrorBudget(n.state)) run.#errors++
      if (n.kept && !isFinal(n.state)) run.#output.set(n.node, { ...n.kept, cut: false })
    })
    run.#nextPhase = snapshot.nextPhase
    run.#stop = snapshot.stop
    run.#control = snapshot.control
    run.#deadlineAt = snapshot.deadlineAt
    run.#graces = snapshot.graces.map((g) => ({ ...g }))
    for (const g of run.#graces) for (const n of g.nodes ?? []) run.#silent.add(n)
    // An offer that was on its way is made again; a share given up on stays so.
    run.#shares = snapshot.shares.map((sh) => ({ ...sh, retryAt: sh.hive === null && sh.retryAt === null && sh.failures < MAX_REOFFER_FAILURES ? 0 : sh.retryAt }))
    run.#note('info', 'resumed a running job', { open: run.#open })
    if (run.#open === 0) run.#finish(now)
    // A phase that ended while no queen led moves on now.
    else run.#phaseDone(now)
    return { run, effects: run.#take() }
  }

  /** What `restore` needs besides the nodes: stored with every commit that touched the job. */
  snapshot(): RunSnapshot {
    return {
      v: 1,
      nextPhase: this.#nextPhase,
      stop: this.#stop,
      control: this.#control,
      deadlineAt: this.#deadlineAt,
      graces: this.#graces.map((g) => ({ ...g })),
      shares: this.#shares.map((sh) => ({ ...sh })),
      order: this.#order.snapshot(),
    }
  }

  /**
   * A job that was running when a queen of an older version stopped, without a stored
   * snapshot: the queen does not know which hive holds which share, so dispatching stops
   * (hives skip what they have not started); what runs still reports, and what has not
   * reported by the time its deadline passes ends as unknown, never re-run.
   */
  static resume(cfg: JobRunConfig, nodes: ResumedNode[], now: number): { run: JobRun; effects: Effect[] } {
    const run = new JobRun(cfg)
    run.#phases = [nodes.map((n) => n.node)]
    run.#nextPhase = 1
    for (const n of nodes) {
      run.#setNode(n.node, { region: n.region, state: n.state, phase: 0, agentless: n.agentless, exitCode: n.exitCode, digest: n.digest, cause: n.cause })
      if (spendsErrorBudget(n.state)) run.#errors++
    }
    run.#note('info', 'resumed a running job', { open: run.#open })
    if (run.#open === 0) run.#finish(now)
    else {
      run.#halt('the queen restarted', 'halt', now)
      run.#graces.push({ at: now + cfg.request.rollout.timeoutMs + cfg.cancelGraceMs, skipped: 'not dispatched: the queen restarted', lost: 'no result after the queen restarted' })
    }
    return { run, effects: run.#take() }
  }

  /** [canary, rest] or [all], from the targets in order; returns each position's phase. */
  #planPhases(ids: string[]): (i: number) => number {
    const { rollout } = this.request
    const canary = rollout.canary > 0 && rollout.canary < ids.length ? rollout.canary : 0
    this.#phases = canary > 0 ? [ids.slice(0, canary), ids.slice(canary)] : [ids]
    this.#maxErrors = rollout.maxErrors === undefined ? null : resolveCount(rollout.maxErrors, ids.length)
    return (i) => (canary > 0 && i >= canary ? 1 : 0)
  }

  get stop(): StopState {
    return this.#stop
  }

  get finished(): boolean {
    return this.#finished
  }

  /** Nodes without a final state. */
  get open(): number {
    return this.#open
  }

  state(node: string): NodeState | undefined {
    return this.#nodes.get(node)?.state
  }

  /** Where a target is reached: its region and whether over SSH; undefined for a node not targeted. */
  target(node: string): { region: string; agentless: boolean } | undefined {
    const e = this.#nodes.get(node)
    return e && { region: e.region, agentless: e.agentless }
  }

  /** Whether the share holding `node` was offered again after `attempt` (a hive's verdict under it is stale). */
  reofferedSince(node: string, attempt: number): boolean {
    const e = this.#nodes.get(node)
    if (!e) return false
    const share = this.#shares.find((s) => s.region === e.region && s.phase === e.phase)
    return share !== undefined && share.attempt > attempt
  }

  /**
   * A producer's event (worker, hive). Only node events are taken; the queen alone writes
   * `job.*`. A node's events are applied in their task's order (`NodeOrder`).
   */
  onEvent(ev: WireEvent, now: number): Effect[] {
    if (ev.kind === 'node.finished' && ev.startedAt !== undefined) return unfoldStart(ev).flatMap((e) => this.onEvent(e, now))
    const cur = isNodeEvent(ev) && !this.#finished ? this.#nodes.get(ev.node) : undefined
    if (!cur || isFinal(cur.state) || !isNodeEvent(ev)) {
      this.#ingest(ev, now)
      return this.#take()
    }
    const { ready, gaps } = this.#order.accept(ev, cur.state === 'running', now)
    this.#gaps(gaps)
    for (const r of ready) this.#ingest(r, now)
    return this.#take()
  }

  /** Events applied without earlier ones of their task that never came. */
  #gaps(gaps: Gap[]) {
    for (const g of gaps) this.#note('warn', 'applied a node’s events without earlier ones that did not come', { node: g.node, missing: g.missing, why: g.why })
  }

  /** The answer of the hive offered a region's share (`share` as it was offered). */
  onShare(share: Pick<HiveJob, 'region' | 'phase' | 'attempt' | 'nodes'>, outcome: ShareOutcome, now: number): Effect[] {
    if (this.#finished) return []
    const held = this.#share(share.region, share.phase)
    // An answer to an older offer than the latest is history.
    if (held && held.attempt !== share.attempt) return []
    const { region, nodes } = share
    if (outcome.accepted) {
      if (held) {
        held.hive = outcome.by
        held.failures = 0
      }
      const open = nodes.filter((n) => !isFinal(this.#nodes.get(n)?.state ?? 'ok')).length
      const how = share.attempt === 0 ? '' : ` (offer ${share.attempt + 1}: its hive had stopped)`
      this.#emit({ jobId: this.id, ts: now, kind: 'job.region', region, nodes: open, hive: outcome.by, human: `region ${region}: ${open} node${open === 1 ? '' : 's'} handed to hive ${outcome.by}${how}` })
      // A stop that came while the share was on its way: the hive may have missed it.
      if (this.#control) this.#out.push({ type: 'control', control: this.#control })
      return this.#take()
    }
    this.#note('warn', 'region not dispatched', { region, phase: share.phase, attempt: share.attempt, cause: outcome.cause })
    if (share.attempt === 0 || !held) {
      for (const n of nodes) this.#finishNode(n, 'error', outcome.cause, now)
      return this.#take()
    }
    held.failures++
    if (held.failures < MAX_REOFFER_FAILURES) {
      held.retryAt = now + this.#reofferRetryMs
      return this.#take()
    }
    // No hive of the region takes it: what was never started will not be; what runs still
    // reports, straight to the stream, until its deadline.
    held.retryAt = null
    const scope = { region, phase: share.phase }
    for (const n of nodes) if (this.#nodes.get(n)?.state === 'pending') this.#finishNode(n, 'skipped', `not dispatched: no hive of region ${region} took the share over (${outcome.cause})`, now)
    this.#graces.push({ at: now + this.request.rollout.timeoutMs + this.#cancelGraceMs, skipped: `not dispatched: no hive of region ${region}`, lost: `no result: its hive stopped and no other hive of region ${region} took over`, share: scope })
    return this.#take()
  }

  /**
   * The share could not be dispatched because its whole operation cannot be had (its env
   * values and stdin were forgotten, or cannot be opened): nothing more is dispatched, and the
   * share ends as an offer no hive took (`cause` says why). Never run without its env.
   */
  undispatchable(share: Pick<HiveJob, 'region' | 'phase' | 'attempt' | 'nodes'>, cause: string, now: number): Effect[] {
    this.#halt(cause, 'halt', now)
    const halted = this.#take()
    return [...halted, ...this.onShare(share, { accepted: false, cause }, now)]
  }

  /** Asks hives and workers to stop; the job ends when each node confirms (or the grace passes). */
  cancel(reason: string, now: number): Effect[] {
    this.#halt(reason, 'cancel', now)
    return this.#take()
  }

  /**
   * Gives each started node whose worker went silent its result deadline (`lost` once it
   * passes with no result: a worker only paused or cut off reports before it, its task's own
   * timeout included), and offers again the open nodes of shares whose hive is gone, so a
   * standby hive of the region takes them over.
   */
  sweep(presence: PresenceView, now: number): Effect[] {
    if (this.#finished) return []
    const silent: string[] = []
    for (const [node, s] of this.#nodes) {
      if (s.state !== 'running' || this.#silent.has(node) || !presence.workerOffline(node)) continue
      this.#silent.add(node)
      silent.push(node)
    }
    if (silent.length > 0) this.#graces.push({ at: now + this.request.rollout.timeoutMs + this.#cancelGraceMs, skipped: WORKER_SILENT_CAUSE, lost: WORKER_SILENT_CAUSE, nodes: silent })
    if (silent.length > 0) this.#note('warn', 'the workers of running nodes stopped heartbeating: each ends lost if no result comes by its deadline', { nodes: silent.length, first: silent.slice(0, 5) })
    for (const sh of this.#shares) {
      const gone = sh.hive !== null && presence.hiveGone(sh.hive)
      if (!gone && !(sh.hive === null && sh.retryAt !== null && now >= sh.retryAt)) continue
      const open = this.#phases[sh.phase]?.filter((n) => {
        const e = this.#nodes.get(n)
        return e !== undefined && e.region === sh.region && !isFinal(e.state)
      })
      if (!open || open.length === 0) continue
      if (this.#stop.kind !== 'dispatching') {
        // Stopped: nothing more may start, so nothing is offered again. What never started ends
        // now; what runs reports straight to the stream until its deadline.
        const reason = this.#stop.reason
        sh.hive = null
        sh.retryAt = null
        for (const n of open) if (this.#nodes.get(n)?.state === 'pending') this.#finishNode(n, 'skipped', `not dispatched: ${reason}`, now)
        this.#graces.push({ at: now + this.request.rollout.timeoutMs + this.#cancelGraceMs, skipped: `not dispatched: ${reason}`, lost: `no result: its hive stopped after: ${reason}`, share: { region: sh.region, phase: sh.phase } })
        continue
      }
      if (gone) this.#note('warn', 'a hive holding a share stopped heartbeating: offering its open nodes again', { region: sh.region, phase: sh.phase, hive: sh.hive, open: open.length })
      sh.attempt++
      sh.hive = null
      sh.retryAt = null
      this.#offer(sh.phase, sh.attempt, sh.region, open)
    }
    return this.#take()
  }

  /** When the run next needs `tick`, or null. */
  nextWake(): number | null {
    if (this.#finished) return null
    let at = this.#deadlineAt ?? Infinity
    for (const g of this.#graces) at = Math.min(at, g.at)
    at = Math.min(at, this.#order.nextDue() ?? Infinity)
    return at === Infinity ? null : at
  }

  /** The time passed: held events, the job deadline, confirmation graces. */
  tick(now: number): Effect[] {
    const { ready, gaps } = this.#order.due(now)
    this.#gaps(gaps)
    for (const r of ready) this.#ingest(r, now)
    if (this.#deadlineAt !== null && now >= this.#deadlineAt) {
      this.#deadlineAt = null
      this.#halt('job deadline passed', 'timeout', now)
    }
    const due = this.#graces.filter((g) => now >= g.at)
    this.#graces = this.#graces.filter((g) => now < g.at)
    for (const g of due) {
      if (g.nodes !== undefined) {
        for (const n of g.nodes) {
          this.#silent.delete(n)
          if (this.#nodes.get(n)?.state === 'running') this.#finishNode(n, 'lost', g.lost, now)
        }
        continue
      }
      for (const [node, s] of this.#nodes) {
        if (g.share && (s.region !== g.share.region || s.phase !== g.share.phase)) continue
        if (s.state === 'pending') this.#finishNode(node, 'skipped', g.skipped, now)
        else if (s.state === 'running') this.#finishNode(node, 'lost', g.lost, now)
      }
    }
    return this.#take()
  }

  #take(): Effect[] {
    const out = this.#out
    this.#out = []
    return out
  }

  #emit(event: WireEvent, node?: { node: string; update: NodeUpdate }) {
    this.#out.push(node ? { type: 'emit', event, node } : { type: 'emit', event })
  }

  #note(level: 'debug' | 'info' | 'warn', msg: string, fields?: Record<string, unknown>) {
    this.#out.push({ type: 'note', level, msg, ...(fields ? { fields } : {}) })
  }

  #setNode(node: string, entry: NodeEntry) {
    const prev = this.#nodes.get(node)
    if (prev) {
      this.#counts.set(prev.state, (this.#counts.get(prev.state) ?? 1) - 1)
      if (!isFinal(prev.state)) this.#open--
    }
    this.#nodes.set(node, entry)
    this.#counts.set(entry.state, (this.#counts.get(entry.state) ?? 0) + 1)
    if (!isFinal(entry.state)) this.#open++
    else this.#order.forget(node)
  }

  /** A node reaches a final state from the queen's side (offline, no hive, lost, not dispatched). */
  #finishNode(node: string, state: FinalState, cause: string, now: number) {
    const cur = this.#nodes.get(node)
    if (!cur || isFinal(cur.state)) return
    this.#ingest(notRunEvent(this.id, node, state, cause, now), now)
  }

  #ingest(numbered: WireEvent, now: number) {
    if (this.#finished) return
    if (!isNodeEvent(numbered)) {
      this.#note('warn', 'dropped a job event only the queen may emit', { kind: numbered.kind })
      return
    }
    // The step is the producer's order, not part of the job's log.
    const ev = unstep(numbered)
    const cur = this.#nodes.get(ev.node)
    if (!cur) {
      this.#note('warn', 'dropped an event for a node that is not a target', { node: ev.node, kind: ev.kind })
      return
    }
    if (isFinal(cur.state)) {
      this.#note('debug', 'dropped an event after the node ended', { node: ev.node, kind: ev.kind })
      return
    }
    if (ev.kind === 'node.output') {
      this.#keepOutput(ev)
      return
    }
    if (ev.kind === 'node.started') {
      // A node starts once: a repeated start would only grow the job's log.
      if (cur.state === 'running') {
        this.#note('debug', 'dropped a second node.started', { node: ev.node })
        return
      }
      this.#setNode(ev.node, { ...cur, state: 'running' })
      // Every line about a node is the queen's own, from the fields it checked: a producer's
      // words cannot pose as the queen's narration.
      this.#emit({ ...ev, human: `${ev.node}: started` }, { node: ev.node, update: { state: 'running' } })
      return
    }
    this.#setNode(ev.node, { ...cur, state: ev.state, exitCode: ev.exitCode, digest: ev.digest, cause: ev.cause })
    const { jobId: _j, ts: _t, kind: _k, node: _n, human: _h, ...outcome } = ev
    // What the queen cut, the stored node says too (the event stays as its producer sent it).
    if (this.#output.get(ev.node)?.cut) outcome.truncated = true
    this.#output.delete(ev.node)
    const human = ev.durationMs === null ? notRunEvent(ev.jobId, ev.node, ev.state, ev.cause ?? ev.state).human : finishedLine(ev.node, ev, ev.durationMs, this.request.outputCapBytes)
    this.#emit({ ...ev, human }, { node: ev.node, update: outcome })
    if (spendsErrorBudget(ev.state)) {
      this.#errors++
      if (this.#maxErrors !== null && this.#errors >= this.#maxErrors) this.#halt(`max errors reached (${this.#errors} of ${this.#maxErrors} allowed)`, 'halt', now)
    }
    this.#phaseDone(now)
    if (this.#open === 0) this.#finish(now)
  }

  /**
   * Keeps a node's output up to the job's cap, counted in UTF-8 bytes as stored, and up to
   * `maxOutputEvents` chunks. The worker enforces the cap where the output is made; this holds
   * a forged or broken producer to it too. The excess is dropped and noted once per node.
   */
  #keepOutput(ev: WireEventOf<'node.output'>) {
    const cap = this.request.outputCapBytes
    let kept = this.#output.get(ev.node)
    if (!kept) this.#output.set(ev.node, (kept = { bytes: 0, events: 0, cut: false }))
    // An empty chunk keeps nothing and would cost a row of the log.
    if (ev.data === '') return
    const room = kept.events < maxOutputEvents(cap) ? cap - kept.bytes : 0
    const bytes = Buffer.byteLength(ev.data)
    const data = bytes <= room ? ev.data : utf8Prefix(ev.data, Math.max(0, room))
    if (data !== ev.data) {
      if (!kept.cut) this.#note('warn', "dropped output past the job's cap", { node: ev.node, capBytes: cap, maxEvents: maxOutputEvents(cap) })
      kept.cut = true
      if (data === '') return
    }
    kept.bytes += data === ev.data ? bytes : Buffer.byteLength(data)
    kept.events++
    // The line is the queen's own, made from what it kept: a producer's cannot be larger.
    this.#emit({ ...ev, data, human: prefixLines(ev.node, data) })
  }

  /** Hands the next phase's pending nodes to their regions' hives. */
  #dispatchNextPhase(now: number) {
    const phase = this.#nextPhase
    const ids = this.#phases[phase]
    if (!ids || this.#stop.kind !== 'dispatching') return
    this.#nextPhase++
    if (phase === 0 && this.#phases.length > 1) {
      this.#emit({ jobId: this.id, ts: now, kind: 'job.canary', state: 'running', nodes: ids.length, human: `canary: ${ids.length} node${ids.length === 1 ? '' : 's'} first, the rest only if all are ok` })
    }
    const byRegion = new Map<string, string[]>()
    for (const id of ids) {
      const entry = this.#nodes.get(id)
      if (!entry || entry.state !== 'pending') continue
      const list = byRegion.get(entry.region) ?? []
      list.push(id)
      byRegion.set(entry.region, list)
    }
    for (const [region, nodes] of byRegion) {
      this.#shares.push({ region, phase, attempt: 0, hive: null, failures: 0, retryAt: null })
      this.#offer(phase, 0, region, nodes)
    }
    // A phase whose nodes all ended already (offline) moves on at once.
    this.#phaseDone(now)
  }

  /** Offers a region's nodes of a phase to its hives (attempt 0, or a re-offer of the open ones). */
  #offer(phase: number, attempt: number, region: string, nodes: string[]) {
    const r = this.request.rollout
    this.#out.push({
      type: 'dispatch',
      share: {
        jobId: this.id,
        phase,
        attempt,
        region,
        nodes,
        agentless: nodes.filter((id) => this.#nodes.get(id)?.agentless),
        concurrency: resolveCount(r.concurrency, nodes.length),
        maxErrors: this.#maxErrors,
        errorsSoFar: this.#errors,
        timeoutMs: r.timeoutMs,
        deliveryTimeoutMs: r.deliveryTimeoutMs,
        outputCapBytes: this.request.outputCapBytes,
        targets: this.#nodes.size,
        confirm: this.request.confirm?.nodes ?? null,
      },
    })
  }

  #share(region: string, phase: number): ShareState | undefined {
    return this.#shares.find((sh) => sh.region === region && sh.phase === phase)
  }

  /** When every node of the dispatched phase has ended: judge the canary, start the next phase. */
  #phaseDone(now: number) {
    const current = this.#nextPhase - 1
    if (current < 0 || this.#nextPhase >= this.#phases.length || this.#stop.kind !== 'dispatching') return
    const ids = this.#phases[current]!
    if (!ids.every((id) => isFinal(this.#nodes.get(id)!.state))) return
    const notOk = ids.filter((id) => this.#nodes.get(id)!.state !== 'ok').length
    if (notOk > 0) {
      this.#emit({ jobId: this.id, ts: now, kind: 'job.canary', state: 'failed', nodes: ids.length, human: `canary failed: ${notOk} of ${ids.length} not ok` })
      this.#halt(`canary failed (${notOk} of ${ids.length} not ok)`, 'halt', now)
      return
    }
    this.#emit({ jobId: this.id, ts: now, kind: 'job.canary', state: 'passed', nodes: ids.length, human: `canary passed: ${ids.length} ok; rolling out to the rest` })
    this.#dispatchNextPhase(now)
  }

  /**
   * Stops dispatching (`halt`), or also what runs (`timeout`, `cancel`): the hives skip what
   * they have not dispatched, the run skips the phases it has not handed out.
   */
  #halt(reason: string, how: 'halt' | 'timeout' | 'cancel', now: number) {
    if (this.#finished) return
    const s = this.#stop
    const rank = { dispatching: 0, halted: 1, 'timing-out': 2, cancelled: 3 } as const
    const to = how === 'halt' ? 'halted' : how === 'timeout' ? 'timing-out' : 'cancelled'
    if (rank[to] <= rank[s.kind]) return
    this.#stop = { kind: to, reason: s.kind === 'dispatching' ? reason : s.reason }
    const stopping = how !== 'halt'
    if (how === 'cancel') this.#emit({ jobId: this.id, ts: now, kind: 'job.cancelling', reason, human: `job ${this.id}: cancelling (${reason})` })
    else this.#emit({ jobId: this.id, ts: now, kind: 'job.halted', reason, human: `job ${this.id}: ${stopping ? 'stopping' : 'dispatching stopped'}: ${reason}` })
    this.#note('info', 'job stopping', { reason, how })
    this.#control = { jobId: this.id, action: stopping ? 'cancel' : 'halt', reason, outcome: how === 'timeout' ? 'timeout' : 'cancelled' }
    this.#out.push({ type: 'control', control: this.#control })
    const undispatched = this.#phases.slice(this.#nextPhase)
    this.#nextPhase = this.#phases.length
    for (const phase of undispatched) for (const id of phase) this.#finishNode(id, 'skipped', `not dispatched: ${reason}`, now)
    if (stopping) this.#graces.push({ at: now + this.#cancelGraceMs, skipped: `not dispatched: ${reason}`, lost: `no confirmation after: ${reason}` })
  }

  #finish(now: number) {
    if (this.#finished) return
    this.#finished = true
    const counts: Partial<Record<NodeState, number>> = {}
    for (const [s, n] of this.#counts) if (n > 0) counts[s] = n
    const state: JobState = this.#stop.kind === 'cancelled' ? 'cancelled' : counts.ok === this.#nodes.size ? 'ok' : 'failed'
    const stopReason = this.#stop.kind === 'dispatching' ? null : this.#stop.reason
    const durationMs = now - this.createdAt
    this.#emit({
      jobId: this.id,
      ts: now,
      kind: 'job.finished',
      state,
      counts,
      groups: groupResults(this.#nodes),
      durationMs,
      stopReason,
      human: `job ${this.id} ${state} in ${durationText(durationMs)}: ${countsLine(counts)}${stopReason ? ` (stopped: ${stopReason})` : ''}`,
    })
    this.#note('info', 'job finished', { state, counts, durationMs, stopReason })
    this.#out.push({ type: 'finished', end: { jobId: this.id, state, finishedAt: now, counts, stopReason } })
  }
}

function isNodeEvent(ev: WireEvent): ev is NodeEvent {
  return ev.kind === 'node.started' || ev.kind === 'node.output' || ev.kind === 'node.finished'
}

function unstep<E extends NodeEvent>(ev: E): E {
  if (ev.step === undefined && !('startedAt' in ev)) return ev
  const { step: _s, startedAt: _a, ...rest } = ev as E & { startedAt?: number }
  return rest as E
}
