import { z } from 'zod'
import { AccessVerdict } from './access.ts'
import { JobId, NodeId, Region } from './ids.ts'
import { ExecOperation, Facts, Operation } from './operation.ts'
import { OperationView } from './secrets.ts'
import { SelectorText } from './targets.ts'

export const DEFAULT_OUTPUT_CAP = 1024 * 1024
export const DEFAULT_TIMEOUT_MS = 30_000
export const DEFAULT_CONCURRENCY = 100

/** States a node can end in (README, "Node states"). */
export const FINAL_STATES = ['ok', 'failed', 'error', 'timeout', 'cancelled', 'skipped', 'lost'] as const
export const FinalState = z.enum(FINAL_STATES)
export type FinalState = z.infer<typeof FinalState>
export const NodeState = z.enum(['pending', 'running', ...FINAL_STATES])
export type NodeState = z.infer<typeof NodeState>

/** An agentless host's circuit breaker: closed (connects go ahead), open (refused), half-open (one trial). */
export const BreakerState = z.enum(['closed', 'open', 'half-open'])
export type BreakerState = z.infer<typeof BreakerState>

export function isFinal(state: NodeState): state is FinalState {
  return state !== 'pending' && state !== 'running'
}

/** The final states that are "not ok": they spend a job's error budget (`maxErrors`) and are what a re-run takes by default. */
export const NOT_OK_STATES = ['failed', 'error', 'timeout', 'lost'] as const satisfies readonly FinalState[]

export function spendsErrorBudget(state: NodeState): boolean {
  return (NOT_OK_STATES as readonly NodeState[]).includes(state)
}

export const JOB_STATES = ['running', 'ok', 'failed', 'cancelled'] as const
export const JobState = z.enum(JOB_STATES)
export type JobState = z.infer<typeof JobState>

const MAX_MS = 7 * 24 * 3600 * 1000
export const DEFAULT_DELIVERY_TIMEOUT_MS = 5000

/**
 * A count (`50`) or a percentage of the targets (`"10%"`). Percentages round up, never to 0.
 * @example resolveCount('10%', 10_000) // 1000
 */
export const CountOrPercent = z.union([
  z.number().int().min(1, 'must be at least 1').max(10_000_000),
  z
    .string()
    .regex(/^(100|[1-9]?[0-9](\.[0-9]+)?)%$/, 'must be a count or a percentage from 0% to 100%, like "10%"')
    .refine((s) => Number(s.slice(0, -1)) > 0, 'must be more than 0%'),
])
export type CountOrPercent = z.infer<typeof CountOrPercent>

export function resolveCount(spec: CountOrPercent, total: number): number {
  if (typeof spec === 'number') return spec
  return Math.max(1, Math.ceil((total * Number(spec.slice(0, -1))) / 100))
}

/** Rollout policy of a job: validated at the edge, shown by `keeper job`. */
export const Rollout = z.strictObject({
  /** Tasks in flight at once per region (a sliding window); a percentage is of the region's targets. */
  concurrency: CountOrPercent.default(DEFAULT_CONCURRENCY),
  /** Once this many nodes are not ok (failed, error, timeout, lost), nothing more is dispatched. */
  maxErrors: CountOrPercent.optional(),
  /** Run the first N targets alone; go on only if all of them are ok. */
  canary: z.number().int().min(0).max(100_000).default(0),
  /** Execution deadline per node, enforced where the process runs (state `timeout`). */
  timeoutMs: z.number().int().min(1).max(MAX_MS).default(DEFAULT_TIMEOUT_MS),
  /** How long a worker has to take a task (state `error: undelivered`). */
  deliveryTimeoutMs: z.number().int().min(100).max(MAX_MS).default(DEFAULT_DELIVERY_TIMEOUT_MS),
  /** Deadline of the whole job: past it, nothing is dispatched and running nodes are stopped (`timeout`). */
  deadlineMs: z.number().int().min(1).max(MAX_MS).optional(),
})
export type Rollout = z.infer<typeof Rollout>
export type RolloutInput = z.input<typeof Rollout>

/** Confirms a destructive operation on exactly this many nodes (see `classifyRisk`). */
export const Confirm = z.strictObject({ nodes: z.number().int().min(0) })
export type Confirm = z.infer<typeof Confirm>

/** The body of `POST /v1/jobs`. */
export const JobRequest = z.strictObject({
  operation: Operation,
  targets: SelectorText,
  rollout: Rollout.default(Rollout.parse({})),
  outputCapBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(DEFAULT_OUTPUT_CAP),
  confirm: Confirm.optional(),
})
export type JobRequest = z.infer<typeof JobRequest>
export type JobRequestInput = z.input<typeof JobRequest>

/** A job request as the queen stores and shows it: its operation without env values or stdin (`redactOperation`). */
export const JobRequestView = JobRequest.extend({ operation: OperationView })
export type JobRequestView = z.infer<typeof JobRequestView>

/** Nodes by state; a state no node is in may be absent. */
export const Counts = z.partialRecord(NodeState, z.number().int().min(0))
export type Counts = z.infer<typeof Counts>

/** Nodes with an identical result: same state, exit code and output digest. */
export const ResultGroup = z.object({
  state: FinalState,
  exitCode: z.number().int().nullable(),
  digest: z.string(),
  cause: z.string().nullable(),
  count: z.number().int(),
  nodes: z.array(NodeId),
})
export type ResultGroup = z.infer<typeof ResultGroup>

/**
 * Nodes share a result group when state, exit code, output digest and cause are equal: the
 * queen's `job.finished` groups and keeper's live count of distinct results use this one key.
 */
export function resultGroupKey(r: { state: NodeState; exitCode: number | null; digest: string | null; cause: string | null }): string {
  return `${r.state}\u0000${r.exitCode ?? ''}\u0000${r.digest ?? ''}\u0000${r.cause ?? ''}`
}

/** The longest `cause` of a node's end, in characters; producers cut theirs to it (`clip`). */
export const MAX_CAUSE = 1024
/** The longest result of `facts` or `ping`, as JSON characters: real facts are under 1 KiB. */
export const MAX_RESULT_CHARS = 8 * 1024

/**
 * The typed result of an operation that runs nothing: `facts` answers `Facts`, `ping`
 * `{ pong: true }`. A union of known, shallow shapes: anything else (an object nested 300,000
 * deep, which no JSON.stringify can write) is refused on receipt and never reaches the store.
 */
export const NodeRunResult = z
  .union([Facts, z.strictObject({ pong: z.literal(true) })])
  .refine((r) => JSON.stringify(r).length <= MAX_RESULT_CHARS, `must be at most ${MAX_RESULT_CHARS} characters as JSON`)
export type NodeRunResult = z.infer<typeof NodeRunResult>

/** How a node's run went: carried by `node.finished` and kept per node by the queen. */
export const NODE_OUTCOME = {
  exitCode: z.number().int().nullable(),
  /** The signal that ended the process: `SIGKILL`. */
  signal: z.string().max(32).nullable(),
  /** Why it is not ok, in words: `offline`, `no hive for region eu`, `program not found: x`. */
  cause: z.string().max(MAX_CAUSE).nullable(),
  durationMs: z.number().nullable(),
  /** Output bytes the node produced, kept or not. */
  bytes: z.number().int(),
  /** True when output passed the cap and was cut. */
  truncated: z.boolean(),
  /** Digest of the kept output (stdout and stderr apart); equal digests, equal output. */
  digest: z.string().max(64).nullable(),
  /** The typed result of `facts` or `ping`. */
  result: NodeRunResult.optional(),
}

export const NodeResult = z.object({ node: NodeId, region: Region, state: NodeState, ...NODE_OUTCOME })
export type NodeResult = z.infer<typeof NodeResult>

export const JobSummary = z.object({
  id: JobId,
  state: JobState,
  /** Env keys with `"[redacted]"` values, stdin as `stdinBytes`: the values are never returned. */
  operation: OperationView,
  targets: z.string(),
  rollout: Rollout,
  outputCapBytes: z.number().int(),
  createdAt: z.number(),
  finishedAt: z.number().nullable(),
  nodeCount: z.number().int(),
  counts: Counts,
  lastSeq: z.number().int(),
  /** Why dispatching stopped early, if it did: max errors, canary, deadline, cancel. */
  stopReason: z.string().nullable(),
  /** The job this one re-runs, if any. */
  rerunOf: JobId.nullable(),
  /** The user who submitted it; null for jobs from before users. */
  submittedBy: z.string().nullable().optional(),
})
export type JobSummary = z.infer<typeof JobSummary>

export const JobDetail = JobSummary.extend({ nodes: z.array(NodeResult) })
export type JobDetail = z.infer<typeof JobDetail>

export const JobCreated = z.object({ jobId: JobId, nodes: z.array(NodeId) })
export type JobCreated = z.infer<typeof JobCreated>

/** What a worker refused to run (unsigned, altered, expired work): how many, and the last one. */
export const Refusals = z.object({
  count: z.number().int().min(0),
  last: z.object({ reason: z.string().max(1000), subject: z.string().max(1000), at: z.number() }).nullable(),
})
export type Refusals = z.infer<typeof Refusals>

export const NodeInfo = z.object({
  id: NodeId,
  region: Region,
  labels: z.record(z.string(), z.string()),
  executor: z.string(),
  status: z.enum(['healthy', 'degraded']),
  online: z.boolean(),
  lastSeen: z.number(),
  running: z.number().int(),
  version: z.string(),
  /** Agentless nodes: the last time an SSH worker reached it, and its circuit breaker. */
  lastContact: z.number().nullable().optional(),
  breaker: BreakerState.optional(),
  /** Agent nodes: work the worker refused because the queen's signature did not cover it. */
  refused: Refusals.optional(),
  /** Agent nodes: its worker was told to stop and takes no new task (a job would end it `error: draining`). */
  draining: z.literal(true).optional(),
})
export type NodeInfo = z.infer<typeof NodeInfo>

/** New job ids sort by creation time: `j` + base-36 milliseconds + 8 random hex digits. */
export function newJobId(now = Date.now()): string {
  const rand = Math.floor(Math.random() * 0xffffffff).toString(16).padStart(8, '0')
  return `j${now.toString(36).padStart(8, '0')}${rand}`
}

/** The answer of `POST /v1/plan`: what a job would do, without running it. */
export const JobPlan = z.object({
  nodes: z.number().int(),
  online: z.number().int(),
  regions: z.record(z.string(), z.number().int()),
  /** Offline targets (the first 100): they would end `error: offline`. */
  offline: z.array(z.string()),
  /**
   * Online targets whose worker drains (told to stop; it takes no new task): how many and the
   * first 100. They would end `error: draining`. Absent when there are none.
   */
  draining: z.object({ nodes: z.number().int(), ids: z.array(z.string()) }).optional(),
  sample: z.array(z.string()),
  canary: z.number().int(),
  risk: z.object({ class: z.enum(['safe', 'destructive']), reasons: z.array(z.string()) }),
  /** Whether a role of the caller would allow submitting it, and which rule refuses it if not. */
  access: AccessVerdict.optional(),
})
export type JobPlan = z.infer<typeof JobPlan>

/**
 * The body of `POST /v1/jobs/:id/rerun`. The queen forgets an operation's env values and stdin
 * when its job ends: a re-run of one that had them gives them again (`env` replaces the
 * original's whole environment).
 */
export const RerunRequest = z.strictObject({
  only: z.array(FinalState).min(1).default([...NOT_OK_STATES]),
  confirm: Confirm.optional(),
  env: ExecOperation.shape.env,
  stdin: ExecOperation.shape.stdin,
})
export type RerunRequest = z.input<typeof RerunRequest>
