import type { JobEvent, JobRequestView, JobState, JobSummary, NodeResult, NodeState } from '@apiary/shared'

export interface NewJob {
  id: string
  /** The request with its operation's view: env values and stdin never go into the log or the index. */
  request: JobRequestView
  /** The operation's env values and stdin, sealed (see `SecretSealer`); absent when it has none. The index drops it when the job ends. */
  sealed?: string
  createdAt: number
  nodes: Array<{ node: string; region: string }>
  rerunOf: string | null
  /** The user who submitted it (absent in records written before users). */
  submittedBy?: string
  /** `<user>/<Idempotency-Key>` of the request that made it, and the digest of that request (its view), when it came with one. */
  requestKey?: string
  requestDigest?: string
}

export interface JobEnd {
  jobId: string
  state: JobState
  finishedAt: number
  counts: Partial<Record<NodeState, number>>
  stopReason: string | null
}

/**
 * What one commit writes: jobs created, numbered events with their node updates, jobs that
 * ended, and the state of each run it touched. The leader queen publishes each as one record
 * of the job log (APIARY_LOG) before it commits it; every queen's index is these records
 * applied in order, so any index can be rebuilt from the log.
 */
export interface Batch {
  jobs?: NewJob[]
  events: Array<{ event: JobEvent; nodeUpdate?: { node: string; update: NodeUpdate } }>
  ends: JobEnd[]
  /** Each touched running job's `RunSnapshot` (opaque here), as of the end of the batch. */
  runs?: Array<{ jobId: string; run: unknown }>
  /** The last event-stream sequence whose effects this batch holds: a new leader skips what is applied. */
  src?: number
  /** Which part of its group this record of the job log is, when the group took several. */
  part?: { n: number; of: number }
}

/** Where the index stands against the streams. */
export interface Position {
  /** The last job-log record applied (0: none). */
  logSeq: number
  /** The last event-stream message whose effects are applied (0: none). */
  eventsSeq: number
}

/** A running job as another queen needs it to go on: its state, its nodes in target order, the output kept so far. */
export interface RunState {
  /** The request as submitted (its confirmation too), its operation as a view. */
  request: JobRequestView
  /** The operation's sealed env values and stdin, while the job runs. */
  sealed?: string
  run: unknown
  nodes: Array<NodeResult & { kept: { bytes: number; events: number } }>
}

export interface NodeUpdate {
  state: NodeState
  exitCode?: number | null
  signal?: string | null
  cause?: string | null
  durationMs?: number | null
  bytes?: number
  truncated?: boolean
  digest?: string | null
  result?: NodeResult['result']
}

export interface KnownNode {
  id: string
  region: string
  labels: Record<string, string>
  executor: string
  intervalMs: number
  lastSeen: number
}

export interface StoredEvent {
  seq: number
  kind: string
  /** The event as JSON text, exactly as it was stored. */
  body: string
}

export interface OutputChunk {
  seq: number
  node: string
  stream: 'stdout' | 'stderr'
  data: string
}

/**
 * Where jobs, their per-node results and their event logs live. One seam: the queen never
 * touches SQL outside the implementation, so per-node detail can move to the regions later.
 */
export interface JobStore {
  createJob(job: NewJob): void
  /**
   * Writes a batch in one transaction: jobs created, events (numbered by the caller, gapless
   * per job), their node updates, job ends, run states and, with `logSeq`, the log position
   * (a record at or before the position is skipped: false). Group commit: one transaction per
   * tick, not per event. All or nothing: throws `invalid_input` when something in the batch can
   * never be stored (the caller finds it and drops it), anything else when the store cannot
   * write now (the caller tries again).
   */
  commit(batch: Batch, logSeq?: number): boolean
  position(): Position
  /**
   * Moves a position back: the job log (or the event stream) holds less than this index has
   * applied — an in-process stream that began with this process, or a stream made anew — and
   * what comes is numbered from there. The jobs stay.
   */
  rewind(to: Partial<Position>): void
  /** A running job's stored state, for the queen that leads next; undefined for an unknown job. */
  runState(jobId: string): RunState | undefined
  /**
   * Deletes up to `limit` jobs that finished before `before` (epoch ms), with their nodes and
   * events; returns how many. Called in small steps so nothing else waits long.
   */
  prune(before: number, limit: number): number
  countJobs(): number
  getJob(jobId: string): JobSummary | undefined
  /** A job's state and last event's sequence only: what an event stream checks at every commit. */
  jobProgress(jobId: string): { state: JobState; lastSeq: number } | undefined
  /** The job a request with this `requestKey` made, with that request's digest. */
  jobByRequestKey(key: string): { jobId: string; digest: string | null } | undefined
  listJobs(filter: { state?: JobState; limit: number }): JobSummary[]
  /** Ids of jobs still running, for recovery at start-up. */
  runningJobIds(): string[]
  nodes(jobId: string): NodeResult[]
  /** Events with `seq > after`, at most `limit`, optionally without `node.output`, as stored (JSON text). */
  eventsAfter(jobId: string, after: number, limit: number, opts: { output: boolean }): StoredEvent[]
  /** Output chunks in order, after `after`, at most `limit` (a page; the caller pages on). */
  output(jobId: string, node: string | undefined, after: number, limit: number): OutputChunk[]
  /** Remembers agent nodes (on a first heartbeat, or when one comes back), for restarts: one transaction. */
  rememberNodes(nodes: Iterable<KnownNode>): void
  knownNodes(): KnownNode[]
  close(): void
}

