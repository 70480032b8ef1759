import type { JobEvent, JobRequest, JobState, JobSummary, NodeResult, NodeState } from '@apiary/shared'

export interface NewJob {
  id: string
  request: JobRequest
  createdAt: number
  nodes: Array<{ node: string; region: string }>
  rerunOf: string | null
}

export interface JobEnd {
  jobId: string
  state: JobState
  finishedAt: number
  counts: Partial<Record<NodeState, number>>
  stopReason: string | null
}

/** What one commit writes: numbered events with their node updates, and jobs that ended. */
export interface Batch {
  events: Array<{ event: JobEvent; nodeUpdate?: { node: string; update: NodeUpdate } }>
  ends: JobEnd[]
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
   * Writes a batch in one transaction: events (numbered by the caller, gapless per job), their
   * node updates, and job ends. Group commit: one transaction per tick, not per event. All or
   * nothing: throws `invalid_input` when something in the batch can never be stored (the
   * caller finds it and drops it), anything else when the store cannot write now (the caller
   * tries again).
   */
  commit(batch: Batch): void
  getJob(jobId: string): JobSummary | undefined
  listJobs(filter: { state?: JobState; limit: number }): JobSummary[]
  /** Ids of jobs still running, for recovery at start-up. */
  runningJobIds(): string[]
  nodes(jobId: string): NodeResult[]
  /** Events with `seq > after`, at most `limit`, optionally without `node.output`, as stored (JSON text). */
  eventsAfter(jobId: string, after: number, limit: number, opts: { output: boolean }): StoredEvent[]
  /** Output chunks in order, after `after`, at most `limit` (a page; the caller pages on). */
  output(jobId: string, node: string | undefined, after: number, limit: number): OutputChunk[]
  /** Remembers an agent node (on its first heartbeat, or when it comes back), for restarts. */
  rememberNode(node: KnownNode): void
  knownNodes(): KnownNode[]
  close(): void
}

