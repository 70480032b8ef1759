import { z } from 'zod'
import { JobId, Labels, NodeId, Region } from './ids.ts'
import { BreakerState, FinalState, Refusals } from './job.ts'
import { Operation } from './operation.ts'

/**
 * The largest body each receiver reads on a subject (`subscribe(…, { maxBytes })`); what is
 * larger is dropped unread. Tasks and share offers carry an operation (up to 1 MiB of stdin)
 * and keep the bus's default of 8 MiB.
 */
export const BODY_LIMITS = {
  /** A node event: an output chunk of at most 64 KiB and its narration line. */
  event: 256 * 1024,
  /** A `node.finished` (the hive reads only these): result, cause and line are bounded far below. */
  finished: 32 * 1024,
  /** A hive's verdict on one node. */
  verdict: 16 * 1024,
  control: 8 * 1024,
  /** A heartbeat with up to 10,000 hosts' reachability. */
  heartbeat: 2 * 1024 * 1024,
  /** A chunk of 5,000 node ids. */
  chunk: 2 * 1024 * 1024,
} as const

/** The most nodes one message of a share holds; a larger region's share is sent in chunks. */
export const MAX_CHUNK_NODES = 5_000
/** The most nodes one region's share may hold (the chunks together). */
export const MAX_SHARE_NODES = 1_000_000
/** The most chunks of one share. */
export const MAX_CHUNKS = Math.ceil(MAX_SHARE_NODES / MAX_CHUNK_NODES)

const Hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 hex digits')
const Sig = z.string().regex(/^[A-Za-z0-9_-]{86}$/, 'must be an ed25519 signature in base64url')
const Ms = z.number().int().min(1).max(7 * 24 * 3600 * 1000)

/** How a share is rolled out: the window, the error budget, the deadlines, the output cap. */
const SharePolicy = {
  concurrency: z.number().int().min(1),
  /** Not-ok nodes (of the whole job) at which dispatching stops; null for no budget. */
  maxErrors: z.number().int().min(1).nullable(),
  /** Not-ok nodes of the job so far, when this share was sent. */
  errorsSoFar: z.number().int().min(0),
  timeoutMs: Ms,
  deliveryTimeoutMs: Ms,
  outputCapBytes: z.number().int().min(1),
}

/**
 * One region's share of one phase of a job (phase 0 is the canary when there is one), as the
 * queen's policy hands it out and the hive runs it. Counts are resolved: no percentages here.
 * On the bus it travels as a signed `ShareOffer` and its `ShareChunk`s.
 */
export const HiveJob = z.object({
  jobId: JobId,
  phase: z.number().int().min(0),
  /**
   * 0 for the first offer of a phase's region share; each re-offer (its hive died, the queen
   * restarted without a live holder) of the nodes still open counts up.
   */
  attempt: z.number().int().min(0).max(1000).default(0),
  region: Region,
  nodes: z.array(NodeId).max(MAX_SHARE_NODES),
  /** The nodes of `nodes` reached over SSH by the region's SSH workers, not by an agent. */
  agentless: z.array(NodeId).max(MAX_SHARE_NODES).default([]),
  operation: Operation,
  ...SharePolicy,
  /** All targets of the job and the confirmation the request carried (the destructive-operation gate). */
  targets: z.number().int().min(0).default(0),
  confirm: z.number().int().min(0).nullable().default(null),
})
export type HiveJob = z.infer<typeof HiveJob>
export type HiveJobInput = z.input<typeof HiveJob>

/**
 * What the queen signs for one share: everything about it but the node list, which the
 * Merkle `root` covers (see trust/merkle.ts), and the operation, which its digest `op`
 * covers. Hives check all of it; a worker checks that it is for this job and region, that
 * the operation is this one, that its node is a leaf, the confirmation and the expiry.
 */
export const Grant = z.strictObject({
  v: z.literal(1),
  jobId: JobId,
  phase: z.number().int().min(0),
  attempt: z.number().int().min(0).max(1000),
  region: Region,
  op: Hex64,
  nodes: z.number().int().min(1).max(MAX_SHARE_NODES),
  chunks: z.number().int().min(1).max(MAX_CHUNKS),
  root: Hex64,
  targets: z.number().int().min(0),
  confirm: z.number().int().min(0).nullable(),
  ...SharePolicy,
  issuedAt: z.number().int().min(0),
  expiresAt: z.number().int().min(0),
  sig: Sig,
})
export type Grant = z.infer<typeof Grant>

/** queen → hive on `apiary.hive.<region>.jobs`: the signed grant, the operation and the first chunk. */
export const ShareOffer = z.strictObject({
  grant: Grant,
  operation: Operation,
  nodes: z.array(NodeId).min(1).max(MAX_CHUNK_NODES),
  agentless: z.array(NodeId).max(MAX_CHUNK_NODES).default([]),
})
export type ShareOffer = z.infer<typeof ShareOffer>

/** queen → the hive that took the offer, on `apiary.hive.<region>.chunk.<hiveId>`: chunk `index` (1 on). */
export const ShareChunk = z.strictObject({
  jobId: JobId,
  phase: z.number().int().min(0),
  attempt: z.number().int().min(0).max(1000).default(0),
  index: z.number().int().min(1).max(MAX_CHUNKS),
  nodes: z.array(NodeId).min(1).max(MAX_CHUNK_NODES),
  agentless: z.array(NodeId).max(MAX_CHUNK_NODES).default([]),
})
export type ShareChunk = z.infer<typeof ShareChunk>

/** The reply to a request: the receiver took it, or says why not. */
export const Ack = z.object({
  accepted: z.boolean(),
  /** Who answered: it lands in the queen's narration, so it is an id and nothing else. */
  by: NodeId,
  /** Why not: one line of text, no control characters (it becomes a node's cause). */
  reason: z
    .string()
    .max(1000)
    .regex(/^[^\u0000-\u001f\u007f-\u009f]*$/, 'must be one line without control characters')
    .optional(),
  /**
   * A task this worker took before (a re-offer, after a hive died or a result went missing):
   * `running` while it still runs, else the final state it ended in. It is never run again;
   * a finished one's final event is published again.
   */
  already: z.union([z.literal('running'), FinalState]).optional(),
})
export type Ack = z.infer<typeof Ack>

/**
 * hive → worker on `apiary.task.<region>.<node>` (or `apiary.ssh.<region>`): run one
 * operation on one node, with the queen's grant for the share and the proof that the node is in it.
 */
export const Task = z.strictObject({
  jobId: JobId,
  node: NodeId,
  operation: Operation,
  timeoutMs: Ms,
  outputCapBytes: z.number().int().min(1),
  grant: Grant,
  proof: z.array(z.string().max(65)).max(64),
})
export type Task = z.infer<typeof Task>

/**
 * queen → hives, workers on `apiary.control.<jobId>`, signed by the queen. `halt` stops
 * dispatching (what runs finishes); `cancel` also stops what runs, which then ends as `outcome`.
 */
export const Control = z.strictObject({
  jobId: JobId,
  action: z.enum(['halt', 'cancel']),
  reason: z.string().max(2000),
  outcome: z.enum(['cancelled', 'timeout']).default('cancelled'),
  issuedAt: z.number().int().min(0),
  expiresAt: z.number().int().min(0),
  sig: Sig,
})
export type Control = z.infer<typeof Control>
/** A control message as the queen's policy decides it, before it is signed. */
export type ControlOrder = Pick<Control, 'jobId' | 'action' | 'reason' | 'outcome'>

/** What an SSH worker knows of one host it reaches: its last contact and its circuit breaker. */
export const HostReach = z.object({
  id: NodeId,
  lastContact: z.number().nullable(),
  breaker: BreakerState,
  consecutiveFailures: z.number().int().min(0),
})
export type HostReach = z.infer<typeof HostReach>

/**
 * workers, hives → queen on `apiary.hb.<role>.<id>`. An agent worker (`worker`) is a node;
 * an `ssh-worker` reaches a region's inventory nodes and reports what it knows of them.
 */
export const Heartbeat = z.object({
  id: NodeId,
  role: z.enum(['worker', 'hive', 'ssh-worker']),
  region: Region,
  labels: Labels,
  executor: z.string().max(64).default('local'),
  status: z.enum(['healthy', 'degraded']),
  running: z.number().int().min(0),
  version: z.string().max(64),
  /**
   * 100 ms to 10 min. The queen holds a node online for three intervals and, after a restart,
   * waits as long for the nodes it knew: an unbounded one held it unavailable for years.
   */
  intervalMs: z.number().int().min(100).max(10 * 60_000),
  ts: z.number(),
  /**
   * ssh-worker only: hosts whose reachability changed since its previous heartbeat; at most
   * 10,000 a beat (about 1 MB, NATS's default largest message).
   */
  hosts: z.array(HostReach).max(10_000).optional(),
  /** Work it refused since it started because the queen's signature did not cover it: the operator sees forgeries here. */
  refused: Refusals.optional(),
  /**
   * hive only: its last beat, as it stops (drained on SIGTERM): gone now, not three intervals
   * from now, so the shares it held are offered at once to another hive of its region.
   */
  leaving: z.literal(true).optional(),
  /**
   * worker and ssh-worker: it was told to stop (SIGTERM) and takes no new task while its
   * running ones finish. Sent at once when the drain begins, so the queen stops targeting it.
   */
  draining: z.literal(true).optional(),
})
export type Heartbeat = z.infer<typeof Heartbeat>
