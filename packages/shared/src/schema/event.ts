import { z } from 'zod'
import { JobId, NodeId, Region } from './ids.ts'
import { Counts, FinalState, JobState, MAX_CAUSE, NODE_OUTCOME, ResultGroup, Rollout } from './job.ts'
import { OperationView } from './secrets.ts'
import { MAX_SELECTOR } from './targets.ts'

/** The longest `human` line of an event, in characters (but `node.output`'s, below). */
export const MAX_HUMAN = 4 * 1024
/** The longest `data` of one `node.output`, in characters: workers send chunks of at most 32 Ki. */
export const MAX_OUTPUT_DATA = 64 * 1024
/**
 * The longest `human` of one `node.output`: its data with the node before every line
 * (`prefixLines`, which cuts to this); a chunk of short lines is mostly prefixes.
 */
export const MAX_OUTPUT_HUMAN = 2 * MAX_OUTPUT_DATA

/**
 * Narration: what happened to a job, as events. Producers (workers, hives, the queen) publish
 * `WireEvent`s on `apiary.events.<jobId>`; the queen numbers them into `JobEvent`s with a
 * gapless per-job `seq`, stores them and streams them over SSE.
 */
const Envelope = {
  jobId: JobId,
  ts: z.number(),
  /** One line written for the person watching. */
  human: z.string().max(MAX_HUMAN),
}

const Reason = z.string().max(MAX_CAUSE)

/** The most events one task may number (`step`): far past what an output cap lets a worker send. */
export const MAX_STEP = 2 ** 31
/**
 * The place of a node's event among its task's events, 1 for the first: the worker numbers
 * them, and the queen applies a node's events in this order whatever order the stream stores
 * or hands them in (a publish retried through a stream leader's failover can land after a
 * later one). Absent from a hive's verdicts and from events of workers that predate it.
 */
const Step = z.number().int().min(1).max(MAX_STEP).optional()

const kinds = {
  'job.submitted': {
    /** Without env values or stdin (`redactOperation`). */
    operation: OperationView,
    targets: z.string().max(MAX_SELECTOR),
    rollout: Rollout,
    nodes: z.number().int(),
  },
  'job.region': {
    region: Region,
    nodes: z.number().int(),
    /** The hive that took the share, as its answer names it. */
    hive: z.string().max(300).nullable(),
  },
  'job.cancelling': { reason: Reason },
  /** Dispatching stopped early; the rest of the targets end `skipped`. */
  'job.halted': { reason: Reason },
  'job.canary': { state: z.enum(['running', 'passed', 'failed']), nodes: z.number().int() },
  'job.finished': {
    state: JobState,
    counts: Counts,
    groups: z.array(ResultGroup),
    durationMs: z.number(),
    stopReason: Reason.nullable(),
  },
  'node.started': { node: NodeId, step: Step },
  'node.output': {
    node: NodeId,
    step: Step,
    stream: z.enum(['stdout', 'stderr']),
    data: z.string().max(MAX_OUTPUT_DATA),
    human: z.string().max(MAX_OUTPUT_HUMAN),
  },
  'node.finished': {
    node: NodeId,
    step: Step,
    state: FinalState,
    ...NODE_OUTCOME,
    /**
     * A hive's verdict only: the attempt of the share it decided under. The queen drops a
     * verdict of an attempt that was offered again since (a hive cut off from the queen that
     * went on deciding while another hive took its share over).
     */
    attempt: z.number().int().min(0).max(1000).optional(),
    /**
     * A worker's end of a task that ended before it sent its start: when it started. The queen
     * applies that `node.started` (the step before this one) first; one stored event, not two.
     * Never in a stored `JobEvent`.
     */
    startedAt: z.number().int().min(0).optional(),
  },
} as const

export type EventKind = keyof typeof kinds
export const EVENT_KINDS = Object.keys(kinds) as EventKind[]

const member = <K extends EventKind>(kind: K) => z.object({ ...Envelope, kind: z.literal(kind), ...kinds[kind] })

export const WireEvent = z.discriminatedUnion('kind', [
  member('job.submitted'),
  member('job.region'),
  member('job.cancelling'),
  member('job.halted'),
  member('job.canary'),
  member('job.finished'),
  member('node.started'),
  member('node.output'),
  member('node.finished'),
])
export type WireEvent = z.infer<typeof WireEvent>

const seq = { seq: z.number().int().min(1) }
/** A stored event: a `WireEvent` with its gapless per-job sequence number. */
export const JobEvent = z.discriminatedUnion('kind', [
  member('job.submitted').extend(seq),
  member('job.region').extend(seq),
  member('job.cancelling').extend(seq),
  member('job.halted').extend(seq),
  member('job.canary').extend(seq),
  member('job.finished').extend(seq),
  member('node.started').extend(seq),
  member('node.output').extend(seq),
  member('node.finished').extend(seq),
])
export type JobEvent = WireEvent & { seq: number }
export type EventOf<K extends EventKind> = Extract<WireEvent, { kind: K }> & { seq: number }
export type WireEventOf<K extends EventKind> = Extract<WireEvent, { kind: K }>
