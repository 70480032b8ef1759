import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'libsql'
import { ApiaryError, type JobEvent, JobRequest, JobRequestView, type JobState, type JobSummary, type NodeResult, type NodeState, Operation, OperationView, redactOperation } from '@apiary/shared'
import type { Batch, JobStore, KnownNode, NewJob, NodeUpdate, OutputChunk, StoredEvent } from './store.ts'

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  request TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  finished_at INTEGER,
  node_count INTEGER NOT NULL,
  counts TEXT NOT NULL,
  last_seq INTEGER NOT NULL DEFAULT 0,
  stop_reason TEXT,
  rerun_of TEXT,
  run TEXT,
  submitted_by TEXT
);
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(finished_at);
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobs_state_created ON jobs(state, created_at);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at);
CREATE TABLE IF NOT EXISTS job_nodes (
  job_id TEXT NOT NULL,
  node TEXT NOT NULL,
  region TEXT NOT NULL,
  state TEXT NOT NULL,
  exit_code INTEGER,
  signal TEXT,
  cause TEXT,
  duration_ms REAL,
  bytes INTEGER NOT NULL DEFAULT 0,
  truncated INTEGER NOT NULL DEFAULT 0,
  digest TEXT,
  result TEXT,
  pos INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (job_id, node)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS known_nodes (
  id TEXT PRIMARY KEY,
  region TEXT NOT NULL,
  labels TEXT NOT NULL,
  executor TEXT NOT NULL,
  interval_ms INTEGER NOT NULL,
  last_seen INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
  job_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL,
  node TEXT,
  body TEXT NOT NULL,
  PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS job_secrets (
  job_id TEXT PRIMARY KEY,
  sealed TEXT NOT NULL
) WITHOUT ROWID;
`

/** Columns added after the first release; added in place so no stored job is lost. */
const ADDED_COLUMNS: Array<[table: string, column: string, type: string]> = [
  ['jobs', 'stop_reason', 'TEXT'],
  ['jobs', 'rerun_of', 'TEXT'],
  ['jobs', 'run', 'TEXT'],
  ['job_nodes', 'pos', 'INTEGER NOT NULL DEFAULT 0'],
  ['jobs', 'submitted_by', 'TEXT'],
  ['jobs', 'request_key', 'TEXT'],
  ['jobs', 'request_digest', 'TEXT'],
]

function migrate(db: InstanceType<typeof Database>) {
  for (const [table, column, type] of ADDED_COLUMNS) {
    const cols = db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>
    if (!cols.some((c) => c.name === column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`)
  }
  db.exec('CREATE INDEX IF NOT EXISTS jobs_request_key ON jobs(request_key) WHERE request_key IS NOT NULL')
  redactStored(db)
}

/**
 * A request as its view, whichever a record holds: a view, or (a record written before
 * operations were sealed) the whole request, whose env values and stdin are then dropped.
 */
function requestView(raw: unknown): JobRequestView {
  const view = JobRequestView.safeParse(raw)
  if (view.success) return view.data
  const full = JobRequest.parse(raw)
  return { ...full, operation: redactOperation(full.operation) }
}

/** `job.submitted` with its operation's view (see `requestView`); every other event as it is. */
function eventView(event: JobEvent): JobEvent {
  if (event.kind !== 'job.submitted' || OperationView.safeParse(event.operation).success) return event
  const full = Operation.safeParse(event.operation)
  if (!full.success) throw new ApiaryError('invalid_input', `event ${event.seq} of job ${event.jobId}: job.submitted holds no operation`, 'event')
  return { ...event, operation: redactOperation(full.data) }
}

/**
 * Jobs stored before operations were sealed held env values and stdin in clear: only their
 * view stays, and what SQLite freed is zeroed and the WAL emptied so no page keeps the old text.
 */
function redactStored(db: InstanceType<typeof Database>) {
  const like = `(request LIKE '%"env"%' OR request LIKE '%"stdin"%')`
  const jobs = db.prepare(`SELECT id, request FROM jobs WHERE ${like}`).all() as Array<{ id: string; request: string }>
  const events = db.prepare(`SELECT job_id, seq, body FROM events WHERE kind = 'job.submitted' AND ${like.replaceAll('request', 'body')}`).all() as Array<{ job_id: string; seq: number; body: string }>
  const jobUpdates = jobs.map((j) => ({ id: j.id, text: JSON.stringify(requestView(JSON.parse(j.request))) })).filter((u, i) => u.text !== jobs[i]!.request)
  const eventUpdates = events.map((e) => ({ ...e, text: JSON.stringify(eventView(JSON.parse(e.body) as JobEvent)) })).filter((u) => u.text !== u.body)
  if (jobUpdates.length === 0 && eventUpdates.length === 0) return
  db.exec('PRAGMA secure_delete = ON')
  const setRequest = db.prepare('UPDATE jobs SET request = ? WHERE id = ?')
  const setBody = db.prepare('UPDATE events SET body = ? WHERE job_id = ? AND seq = ?')
  db.transaction(() => {
    for (const u of jobUpdates) setRequest.run(u.text, u.id)
    for (const u of eventUpdates) setBody.run(u.text, u.job_id, u.seq)
  })()
  db.exec('PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA secure_delete = OFF')
}

/**
 * The event as JSON text and its node's result, or `invalid_input` when they cannot be written
 * as JSON (nested too deep for the stack, a cycle, a BigInt): no retry will ever store them.
 */
function serialise(event: JobEvent, update: NodeUpdate | undefined): { body: string; result: string | null } {
  try {
    return { body: JSON.stringify(event), result: update?.result === undefined ? null : JSON.stringify(update.result) }
  } catch (err) {
    throw refused(event, err)
  }
}

/** SQLite's verdicts on the data itself (a duplicate sequence number, a value too big), not on the store. */
function refusesData(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^SQLITE_(CONSTRAINT|TOOBIG|MISMATCH|RANGE)/.test(code)
}

function refused(event: JobEvent, err: unknown): ApiaryError {
  return new ApiaryError('invalid_input', `cannot store event ${event.seq} (${event.kind}) of job ${event.jobId}: ${(err as Error).message}`, 'event', { cause: err })
}

interface JobRow {
  id: string
  state: string
  request: string
  created_at: number
  finished_at: number | null
  node_count: number
  counts: string
  last_seq: number
  stop_reason: string | null
  rerun_of: string | null
  submitted_by: string | null
}

interface NodeRow {
  node: string
  region: string
  state: string
  exit_code: number | null
  signal: string | null
  cause: string | null
  duration_ms: number | null
  bytes: number
  truncated: number
  digest: string | null
  result: string | null
}

/**
 * The job store in one SQLite file (WAL). Every event is committed before anyone is told
 * about it, so a stream that resumes from the store never misses what a live reader saw.
 */
export function openSqliteStore(path: string): JobStore {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  let db: InstanceType<typeof Database>
  try {
    // Jobs hold operations (their views; env values and stdin only sealed) and their output: the
    // file is the owner's alone, and SQLite gives its WAL and shared-memory files the same mode.
    closeSync(openSync(path, 'a', 0o600))
    chmodSync(path, 0o600)
    db = new Database(path)
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;')
    db.exec(SCHEMA)
    migrate(db)
  } catch (err) {
    throw new ApiaryError('internal', `cannot open the job store at ${path}: ${(err as Error).message}`, 'stateDir', { cause: err })
  }

  const insertJob = db.prepare(
    'INSERT INTO jobs (id, state, request, created_at, finished_at, node_count, counts, last_seq, rerun_of, submitted_by, request_key, request_digest) VALUES (?, ?, ?, ?, NULL, ?, ?, 0, ?, ?, ?, ?)',
  )
  const byRequestKey = db.prepare('SELECT id, request_digest FROM jobs WHERE request_key = ? ORDER BY created_at LIMIT 1')
  const insertNode = db.prepare("INSERT INTO job_nodes (job_id, node, region, state, pos) VALUES (?, ?, ?, 'pending', ?)")
  const hasJob = db.prepare('SELECT 1 FROM jobs WHERE id = ?')
  const setRun = db.prepare("UPDATE jobs SET run = ? WHERE id = ? AND state = 'running'")
  const insertSealed = db.prepare('INSERT INTO job_secrets (job_id, sealed) VALUES (?, ?) ON CONFLICT(job_id) DO NOTHING')
  const dropSealed = db.prepare('DELETE FROM job_secrets WHERE job_id = ?')
  const getSealed = db.prepare("SELECT s.sealed FROM job_secrets s JOIN jobs j ON j.id = s.job_id WHERE s.job_id = ? AND j.state = 'running'")
  const getMeta = db.prepare('SELECT value FROM meta WHERE key = ?')
  const setMeta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
  const nodesInOrder = db.prepare('SELECT * FROM job_nodes WHERE job_id = ? ORDER BY pos, node')
  const keptOutput = db.prepare(
    "SELECT node, COUNT(*) AS events, COALESCE(SUM(length(CAST(json_extract(body, '$.data') AS BLOB))), 0) AS bytes FROM events WHERE job_id = ? AND kind = 'node.output' GROUP BY node",
  )
  const oldJobs = db.prepare("SELECT id FROM jobs WHERE state != 'running' AND finished_at IS NOT NULL AND finished_at < ? ORDER BY finished_at LIMIT ?")
  const dropEvents = db.prepare('DELETE FROM events WHERE job_id = ?')
  const dropNodes = db.prepare('DELETE FROM job_nodes WHERE job_id = ?')
  const dropJob = db.prepare('DELETE FROM jobs WHERE id = ?')
  const setSeq = db.prepare('UPDATE jobs SET last_seq = ? WHERE id = ? AND last_seq < ?')
  const insertEvent = db.prepare('INSERT INTO events (job_id, seq, kind, node, body) VALUES (?, ?, ?, ?, ?)')
  const updateNode = db.prepare(`UPDATE job_nodes SET state = ?,
      exit_code = COALESCE(?, exit_code), signal = COALESCE(?, signal), cause = COALESCE(?, cause),
      duration_ms = COALESCE(?, duration_ms), bytes = COALESCE(?, bytes), truncated = COALESCE(?, truncated),
      digest = COALESCE(?, digest), result = COALESCE(?, result)
    WHERE job_id = ? AND node = ?`)
  const finish = db.prepare('UPDATE jobs SET state = ?, finished_at = ?, counts = ?, stop_reason = ? WHERE id = ?')
  // A summary never reads the run's snapshot (`run`, large for a large job): an event stream
  // asks for its job's state at every commit.
  const SUMMARY = 'id, state, request, created_at, finished_at, node_count, counts, last_seq, stop_reason, rerun_of, submitted_by'
  const getJob = db.prepare(`SELECT ${SUMMARY} FROM jobs WHERE id = ?`)
  const getProgress = db.prepare('SELECT state, last_seq FROM jobs WHERE id = ?')
  const getRunState = db.prepare('SELECT * FROM jobs WHERE id = ?')
  const listAll = db.prepare(`SELECT ${SUMMARY} FROM jobs ORDER BY created_at DESC, id DESC LIMIT ?`)
  const listByState = db.prepare(`SELECT ${SUMMARY} FROM jobs WHERE state = ? ORDER BY created_at DESC, id DESC LIMIT ?`)
  const running = db.prepare("SELECT id FROM jobs WHERE state = 'running'")
  const nodesOf = db.prepare('SELECT * FROM job_nodes WHERE job_id = ? ORDER BY node')
  const eventsAll = db.prepare('SELECT seq, kind, body FROM events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?')
  const eventsNoOutput = db.prepare("SELECT seq, kind, body FROM events WHERE job_id = ? AND seq > ? AND kind != 'node.output' ORDER BY seq LIMIT ?")
  const outputAll = db.prepare("SELECT body, seq FROM events WHERE job_id = ? AND kind = 'node.output' AND seq > ? ORDER BY seq LIMIT ?")
  const outputNode = db.prepare("SELECT body, seq FROM events WHERE job_id = ? AND kind = 'node.output' AND node = ? AND seq > ? ORDER BY seq LIMIT ?")

  const remember = db.prepare(
    'INSERT INTO known_nodes (id, region, labels, executor, interval_ms, last_seen) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET region = excluded.region, labels = excluded.labels, executor = excluded.executor, interval_ms = excluded.interval_ms, last_seen = excluded.last_seen',
  )
  const known = db.prepare('SELECT id, region, labels, executor, interval_ms, last_seen FROM known_nodes')
  const insertNewJob = (job: NewJob) => {
    // A record applied again (a rebuild over a partial index) finds its job there.
    if (hasJob.get(job.id)) return
    const key = typeof job.requestKey === 'string' ? job.requestKey : null
    const digest = typeof job.requestDigest === 'string' ? job.requestDigest : null
    insertJob.run(job.id, 'running', JSON.stringify(requestView(job.request)), job.createdAt, job.nodes.length, '{}', job.rerunOf, typeof job.submittedBy === 'string' ? job.submittedBy : null, key, digest)
    job.nodes.forEach((n, i) => insertNode.run(job.id, n.node, n.region, i))
    if (job.sealed !== undefined) insertSealed.run(job.id, job.sealed)
  }
  const create = db.transaction((job: NewJob) => insertNewJob(job))
  const metaValue = (key: string) => (getMeta.get(key) as { value: number } | undefined)?.value ?? 0

  const commit = db.transaction((batch: Batch, logSeq: number | undefined): boolean => {
    if (logSeq !== undefined && logSeq <= metaValue('log_seq')) return false
    for (const job of batch.jobs ?? []) insertNewJob(job)
    const last = new Map<string, number>()
    for (const { event, nodeUpdate } of batch.events) {
      const { body, result } = serialise(eventView(event), nodeUpdate?.update)
      try {
        insertEvent.run(event.jobId, event.seq, event.kind, 'node' in event ? event.node : null, body)
        last.set(event.jobId, Math.max(last.get(event.jobId) ?? 0, event.seq))
        if (!nodeUpdate) continue
        const u = nodeUpdate.update
        updateNode.run(
          u.state,
          u.exitCode ?? null,
          u.signal ?? null,
          u.cause ?? null,
          u.durationMs ?? null,
          u.bytes ?? null,
          u.truncated === undefined ? null : u.truncated ? 1 : 0,
          u.digest ?? null,
          result,
          event.jobId,
          nodeUpdate.node,
        )
      } catch (err) {
        throw refusesData(err) ? refused(event, err) : err
      }
    }
    for (const [jobId, seq] of last) setSeq.run(seq, jobId, seq)
    for (const r of batch.runs ?? []) setRun.run(JSON.stringify(r.run), r.jobId)
    for (const e of batch.ends) {
      finish.run(e.state, e.finishedAt, JSON.stringify(e.counts), e.stopReason, e.jobId)
      // The job ended: its data key is purged, so what sealed its secrets is of no use to keep.
      dropSealed.run(e.jobId)
    }
    if (logSeq !== undefined) setMeta.run('log_seq', logSeq)
    if (batch.src !== undefined && batch.src > metaValue('events_seq')) setMeta.run('events_seq', batch.src)
    return true
  })
  const prune = db.transaction((before: number, limit: number): number => {
    const ids = (oldJobs.all(before, limit) as Array<{ id: string }>).map((r) => r.id)
    for (const id of ids) {
      dropEvents.run(id)
      dropNodes.run(id)
      dropSealed.run(id)
      dropJob.run(id)
    }
    return ids.length
  })

  function toNode(r: NodeRow): NodeResult {
    return {
      node: r.node,
      region: r.region,
      state: r.state as NodeState,
      exitCode: r.exit_code,
      signal: r.signal,
      cause: r.cause,
      durationMs: r.duration_ms,
      bytes: r.bytes,
      truncated: r.truncated === 1,
      digest: r.digest,
      // Validated on receipt (`WireEvent`) before it was stored.
      ...(r.result === null ? {} : { result: JSON.parse(r.result) as NodeResult['result'] }),
    }
  }

  function toSummary(r: JobRow): JobSummary {
    const request = JobRequestView.parse(JSON.parse(r.request))
    return {
      id: r.id,
      state: r.state as JobState,
      operation: request.operation,
      targets: request.targets,
      rollout: request.rollout,
      outputCapBytes: request.outputCapBytes,
      createdAt: r.created_at,
      finishedAt: r.finished_at,
      nodeCount: r.node_count,
      counts: JSON.parse(r.counts) as Record<string, number>,
      lastSeq: r.last_seq,
      stopReason: r.stop_reason,
      rerunOf: r.rerun_of,
      submittedBy: r.submitted_by ?? null,
    }
  }

  function parseEvents(rows: Array<{ body: string }>): JobEvent[] {
    return rows.map((r) => JSON.parse(r.body) as JobEvent)
  }

  return {
    createJob: (job) => create(job),
    commit: (batch, logSeq) => commit(batch, logSeq),
    getJob(jobId) {
      const r = getJob.get(jobId) as JobRow | undefined
      return r ? toSummary(r) : undefined
    },
    jobProgress(jobId) {
      const r = getProgress.get(jobId) as { state: string; last_seq: number } | undefined
      return r && { state: r.state as JobState, lastSeq: r.last_seq }
    },
    jobByRequestKey(key) {
      const r = byRequestKey.get(key) as { id: string; request_digest: string | null } | undefined
      return r && { jobId: r.id, digest: r.request_digest }
    },
    listJobs({ state, limit }) {
      const rows = (state ? listByState.all(state, limit) : listAll.all(limit)) as JobRow[]
      return rows.map(toSummary)
    },
    runningJobIds() {
      return (running.all() as Array<{ id: string }>).map((r) => r.id)
    },
    nodes(jobId) {
      return (nodesOf.all(jobId) as NodeRow[]).map(toNode)
    },
    position: () => ({ logSeq: metaValue('log_seq'), eventsSeq: metaValue('events_seq') }),
    rewind(to) {
      if (to.logSeq !== undefined) setMeta.run('log_seq', to.logSeq)
      if (to.eventsSeq !== undefined) setMeta.run('events_seq', to.eventsSeq)
    },
    runState(jobId) {
      const job = getRunState.get(jobId) as (JobRow & { run: string | null }) | undefined
      if (!job) return undefined
      const kept = new Map((keptOutput.all(jobId) as Array<{ node: string; events: number; bytes: number }>).map((k) => [k.node, { bytes: k.bytes, events: k.events }]))
      const sealed = (getSealed.get(jobId) as { sealed: string } | undefined)?.sealed
      return {
        request: JobRequestView.parse(JSON.parse(job.request)),
        ...(sealed !== undefined ? { sealed } : {}),
        run: job.run === null ? null : (JSON.parse(job.run) as unknown),
        nodes: (nodesInOrder.all(jobId) as NodeRow[]).map((r) => ({ ...toNode(r), kept: kept.get(r.node) ?? { bytes: 0, events: 0 } })),
      }
    },
    prune: (before, limit) => prune(before, limit),
    countJobs: () => (db.prepare('SELECT COUNT(*) AS n FROM jobs').get() as { n: number }).n,
    eventsAfter(jobId, after, limit, opts) {
      return (opts.output ? eventsAll : eventsNoOutput).all(jobId, after, limit) as StoredEvent[]
    },
    output(jobId, node, after, limit) {
      const rows = (node ? outputNode.all(jobId, node, after, limit) : outputAll.all(jobId, after, limit)) as Array<{ body: string }>
      return parseEvents(rows).map((e): OutputChunk => {
        const o = e as Extract<JobEvent, { kind: 'node.output' }>
        return { seq: o.seq, node: o.node, stream: o.stream, data: o.data }
      })
    },
    rememberNodes: db.transaction((nodes: Iterable<KnownNode>) => {
      for (const n of nodes) remember.run(n.id, n.region, JSON.stringify(n.labels), n.executor, n.intervalMs, n.lastSeen)
    }),
    knownNodes() {
      return (known.all() as Array<{ id: string; region: string; labels: string; executor: string; interval_ms: number; last_seen: number }>).map((r) => ({
        id: r.id,
        region: r.region,
        labels: JSON.parse(r.labels) as Record<string, string>,
        executor: r.executor,
        intervalMs: r.interval_ms,
        lastSeen: r.last_seen,
      }))
    },
    close() {
      db.close()
    },
  }
}
