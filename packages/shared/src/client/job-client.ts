import { Agent, request } from 'undici'
import type { z } from 'zod'
import { ApiaryError, type ErrorCode, errorMessage, isApiaryError } from '../errors.ts'
import { JobEvent } from '../schema/event.ts'
import {
  JobCreated,
  JobDetail,
  JobPlan,
  type JobRequestInput,
  type JobState,
  JobSummary,
  NodeInfo,
  type RerunRequest,
} from '../schema/job.ts'
import { AuditPage, IssuedToken } from '../schema/access.ts'
import { CancelAnswer, IDEMPOTENCY_HEADER, JobList, LogsPage, NodeList, Revoked, UserList } from '../schema/api.ts'
import { EventCursor } from './event-cursor.ts'
import { type CallKind, type FailoverLimits, type Miss, Queens, type Tries } from './failover.ts'
import { parseQueenUrls } from './queens.ts'
import { parseSse } from './sse.ts'
import { z as zod } from 'zod'

export interface JobClientOptions {
  /**
   * The queens' base URLs, e.g. `http://127.0.0.1:7070`, in the order to try them: the leader
   * and its standbys. One string may hold several, comma-separated (see `parseQueenUrls`).
   */
  url: string | readonly string[]
  token: string
  /** Per-request timeout for plain calls (not for streams). */
  timeoutMs?: number
  /** How long a plain call goes on trying the queens while they cannot serve it yet (default 30 s). */
  retryForMs?: number
  /** How long a job that queens do not know yet is looked for, when it should exist (default 5 s). */
  notFoundForMs?: number
  /** A queen that does not take a connection within this long is taken for down (default 5 s). */
  connectTimeoutMs?: number
  /**
   * The CA certificates (PEM) an https:// queen's certificate must chain to, instead of the
   * system's: a private CA. Used for plain calls and streams alike.
   */
  ca?: string
  /**
   * Allow plain http:// to a queen that is not on this machine (the token then travels in
   * clear text). Never turns off certificate checks for https://.
   */
  insecure?: boolean
}

export interface StreamOptions {
  /** Resume after this sequence number (sent as `Last-Event-ID`). */
  after?: number
  /** Also carry per-node output chunks. */
  output?: boolean
  signal?: AbortSignal
  /** How long a dropped stream is retried without progress before giving up (default 60 s). */
  reconnectForMs?: number
  /**
   * A stream that brings nothing, not even the queen's keepalive (every 15 s), for this long
   * is taken for lost (default 45 s): a queen whose host died sends no FIN.
   */
  idleMs?: number
  /** Called before each try to get a lost stream back: the queen tried next, and what was lost. */
  onReconnect?: (queen: string, why: string) => void | Promise<void>
}

const STATUS_CODES: Record<number, ErrorCode> = { 400: 'invalid_input', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 409: 'conflict', 428: 'confirmation_required', 503: 'unavailable' }

/** A queen's certificate that does not check out (node:tls's codes): the TLS handshake failed, before any request. */
const UNTRUSTED_CERT = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
])

/** Failures where the request never left: it is safe to send it elsewhere, even a submit. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT', ...UNTRUSTED_CERT])

/** The longest gap a stream without output checks against the queen's stored output. */
const GAP_CHECK_MAX = 1000

type StreamEnd = { type: 'finished' } | { type: 'aborted' } | { type: 'lost'; miss: Miss }

/**
 * The queen's HTTP API as typed calls; used by keeper and the tests. Given several queens (a
 * leader and its standbys), a call goes to the one that answered last and moves on when a queen
 * is down or answers 503 (`not_leader`, `unavailable`), within a deadline; a stream resumes on
 * any queen with `Last-Event-ID`, and shows every event once, in order.
 * @example
 * const client = createJobClient({ url: ['http://q1:7070', 'http://q2:7070'], token })
 * const { jobId } = await client.submit({ operation: { type: 'ping' }, targets: 'all' })
 * for await (const ev of client.stream(jobId)) console.log(ev.human)
 */
export function createJobClient(opts: JobClientOptions) {
  const queens = new Queens(parseQueenUrls(opts.url, 'url', { insecure: opts.insecure === true }))
  const timeoutMs = opts.timeoutMs ?? 30_000
  // One agent for calls and streams: the CA that one trusts, the other does too.
  const dispatcher = new Agent({ keepAliveTimeout: 10_000, connections: 8, connect: { timeout: opts.connectTimeoutMs ?? 5000, ...(opts.ca === undefined ? {} : { ca: opts.ca }) } })
  const auth = { authorization: `Bearer ${opts.token}` }
  const callLimits: FailoverLimits = { deadlineMs: opts.retryForMs ?? 30_000, notFoundForMs: opts.notFoundForMs ?? 5000, allDown: 'fail', maxWaitMs: 2000 }

  /** One request to one queen; a failure to get an answer is thrown as undici reports it. */
  async function send(queen: string, method: 'GET' | 'POST', path: string, body: unknown, budgetMs: number, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
    const ms = Math.max(1, Math.min(timeoutMs, budgetMs))
    const res = await request(`${queen}${path}`, {
      method,
      dispatcher,
      headers: { ...headers, ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? null : JSON.stringify(body),
      headersTimeout: ms,
      bodyTimeout: ms,
    })
    return { status: res.statusCode, text: await res.body.text() }
  }

  /** Sends a call to the queens in turn (see `Tries`) until one serves it. */
  async function call<S extends z.ZodType>(kind: CallKind, method: 'GET' | 'POST', path: string, schema: S, body?: unknown, jobId?: string, headers?: Record<string, string>): Promise<z.output<S>> {
    const what = `${method} ${path.replace(/\?.*$/, '')}`
    const tries = queens.call(kind, callLimits, { what, ...(jobId === undefined ? {} : { jobId }) })
    for (;;) {
      const step = tries.next()
      if (step.type === 'fail') throw step.error
      if (step.waitMs > 0) await sleep(step.waitMs)
      const budget = tries.remainingMs()
      let res
      try {
        res = await send(step.queen, method, path, body, budget, headers)
      } catch (err) {
        tries.missed(step.queen, downMiss(err))
        continue
      }
      const json = parseJson(res.text)
      if (json === undefined && res.status < 400) {
        throw new ApiaryError('internal', `the queen at ${step.queen} answered ${res.status} with a body that is not JSON`)
      }
      if (res.status === 503) {
        tries.missed(step.queen, refusal(json))
        continue
      }
      if (res.status === 404 && jobId !== undefined) {
        tries.missed(step.queen, { type: 'not_found', error: errorFromBody(404, json) })
        continue
      }
      if (res.status >= 400) throw errorFromBody(res.status, json)
      tries.served(step.queen)
      const parsed = schema.safeParse(json)
      if (!parsed.success) {
        throw new ApiaryError('internal', `the queen's answer to ${what} does not match the contract`, undefined, { cause: parsed.error })
      }
      return parsed.data
    }
  }

  /**
   * Whether `queen` holds output chunks for every sequence number from `from` to `to`: the gap a
   * stream without output shows after a resume is then only the chunks it leaves out. One page,
   * bounded: a longer gap (a resume across thousands of chunks) is not fetched whole to check it.
   */
  async function outputCovers(queen: string, jobId: string, from: number, to: number): Promise<boolean> {
    if (to - from + 1 > GAP_CHECK_MAX) return true
    const res = await send(queen, 'GET', `/v1/jobs/${encodeURIComponent(jobId)}/logs${query({ after: from - 1, limit: to - from + 1 })}`, undefined, timeoutMs)
    const page = res.status === 200 ? LogsPage.safeParse(parseJson(res.text)) : undefined
    if (!page?.success) return false
    const seqs = page.data.chunks.map((c) => c.seq)
    return seqs.length === to - from + 1 && seqs.every((seq, i) => seq === from + i)
  }

  /** One connection to one queen's stream of the job, from the cursor on, until it ends. */
  async function* streamFrom(queen: string, jobId: string, cursor: EventCursor, so: StreamOptions, tries: Tries): AsyncGenerator<JobEvent, StreamEnd> {
    const q = so.output ? '?output=full' : ''
    let res
    try {
      res = await request(`${queen}/v1/jobs/${encodeURIComponent(jobId)}/stream${q}`, {
        method: 'GET',
        dispatcher,
        headers: { ...auth, accept: 'text/event-stream', ...(cursor.last > 0 ? { 'last-event-id': String(cursor.last) } : {}) },
        signal: so.signal ?? null,
        bodyTimeout: so.idleMs ?? 45_000,
        headersTimeout: timeoutMs,
      })
    } catch (err) {
      if (so.signal?.aborted) return { type: 'aborted' }
      return { type: 'lost', miss: downMiss(err) }
    }
    if (res.statusCode >= 400) {
      const json = parseJson(await res.body.text().catch(() => ''))
      if (res.statusCode === 503) return { type: 'lost', miss: refusal(json) }
      if (res.statusCode === 404) return { type: 'lost', miss: { type: 'not_found', error: errorFromBody(404, json) } }
      throw errorFromBody(res.statusCode, json)
    }
    tries.served(queen)
    cursor.reconnected()
    try {
      for await (const msg of parseSse(res.body)) {
        const ev = parseEvent(msg.id, msg.data)
        const offer = cursor.offer(ev.seq)
        if (offer.type === 'repeat') continue
        if (offer.type === 'gap' && (so.output || !(await outputCovers(queen, jobId, offer.from, offer.to)))) {
          // Nothing after a gap is shown before it: the stream is read again from the cursor.
          return { type: 'lost', miss: { type: 'down', reason: `its stream skipped events ${offer.from}–${offer.to}`, sent: false } }
        }
        cursor.delivered(ev.seq)
        yield ev
        if (ev.kind === 'job.finished') return { type: 'finished' }
      }
    } catch (err) {
      if (so.signal?.aborted) return { type: 'aborted' }
      if (isApiaryError(err)) throw err
      return { type: 'lost', miss: downMiss(err) }
    }
    if (so.signal?.aborted) return { type: 'aborted' }
    return { type: 'lost', miss: { type: 'down', reason: 'the stream ended before job.finished', sent: false } }
  }

  const client = {
    /** The queens, in the order given. */
    queens: queens.urls,
    /**
     * Submits a job under a fresh `Idempotency-Key`: sent again (to this queen or another) when
     * the answer is lost, it makes the job once.
     */
    submit: async (req: JobRequestInput) => {
      const created = await call('write', 'POST', '/v1/jobs', JobCreated, req, undefined, { [IDEMPOTENCY_HEADER]: globalThis.crypto.randomUUID() })
      queens.knowJob(created.jobId)
      return created
    },
    /** What a job would do (targets, regions, offline nodes, risk), without running it. */
    plan: (req: JobRequestInput) => call('write', 'POST', '/v1/plan', JobPlan, req),
    /** The same operation on the nodes of the original snapshot that ended in `only`. */
    rerun: async (jobId: string, req: RerunRequest = {}) => {
      const created = await call('write', 'POST', `/v1/jobs/${encodeURIComponent(jobId)}/rerun`, JobCreated, req, jobId, { [IDEMPOTENCY_HEADER]: globalThis.crypto.randomUUID() })
      queens.knowJob(created.jobId)
      return created
    },
    list: (filter: { state?: JobState; limit?: number } = {}) => {
      const qs = new URLSearchParams()
      if (filter.state) qs.set('state', filter.state)
      if (filter.limit) qs.set('limit', String(filter.limit))
      const s = qs.toString()
      return call('read', 'GET', `/v1/jobs${s ? `?${s}` : ''}`, JobList).then((r) => r.jobs)
    },
    get: (jobId: string) => call('read', 'GET', `/v1/jobs/${encodeURIComponent(jobId)}`, JobDetail, undefined, jobId),
    cancel: (jobId: string) => call('write', 'POST', `/v1/jobs/${encodeURIComponent(jobId)}/cancel`, CancelAnswer, undefined, jobId),
    nodes: () => call('read', 'GET', '/v1/nodes', NodeList).then((r) => r.nodes),
    /** Users of the queen called (admin only); add and rotate answer with the new token, shown this once. */
    users: {
      list: () => call('read', 'GET', '/v1/users', UserList),
      add: (name: string, roles: string[]) => call('create', 'POST', '/v1/users', IssuedToken, { name, roles }),
      rotate: (name: string) => call('create', 'POST', `/v1/users/${encodeURIComponent(name)}/rotate`, IssuedToken),
      revoke: (name: string) => call('create', 'POST', `/v1/users/${encodeURIComponent(name)}/revoke`, Revoked),
    },
    /** One page of the audit log of the queen called (admin only): records after `after`, oldest first. */
    auditPage: (q: { after?: number; limit?: number; since?: number; user?: string } = {}) => call('read', 'GET', `/v1/audit${query(q)}`, AuditPage),
    /**
     * Node output as stored, in order, with the stream each chunk came from: one page (`next`
     * is where the following one starts, null at the end). `maxBytes` cuts the page short.
     */
    logsPage: (jobId: string, q: { node?: string; maxBytes?: number; after?: number; limit?: number } = {}) =>
      call('read', 'GET', `/v1/jobs/${encodeURIComponent(jobId)}/logs${query(q)}`, LogsPage, undefined, jobId),
    /** Every output chunk of a job (or one node), page by page. */
    async *logs(jobId: string, node?: string) {
      let after = 0
      for (;;) {
        const page = await client.logsPage(jobId, { ...(node ? { node } : {}), after })
        yield* page.chunks
        if (page.next === null) return
        after = page.next
      }
    },
    /**
     * The job's events in order, from `after` on, ending after `job.finished`. A dropped
     * connection is re-opened with `Last-Event-ID`, on the same queen or another, so nothing is
     * lost, repeated or shown out of order.
     */
    async *stream(jobId: string, so: StreamOptions = {}): AsyncGenerator<JobEvent> {
      const cursor = new EventCursor(so.after ?? 0, so.output === true)
      // A stream that drops (a queen dies or restarts, a proxy's idle timeout) is re-opened from
      // where it stopped, with backoff, for as long as `reconnectForMs` passes without progress;
      // every queen down is then worth waiting for.
      const limits: FailoverLimits = { deadlineMs: so.reconnectForMs ?? 60_000, notFoundForMs: callLimits.notFoundForMs, allDown: 'retry', maxWaitMs: 5000 }
      const spec = { what: `the event stream of ${jobId}`, jobId }
      let tries = queens.call('read', limits, spec)
      let why: string | undefined
      for (;;) {
        const step = tries.next()
        if (step.type === 'fail') throw step.error
        if (step.waitMs > 0) await sleep(step.waitMs, so.signal)
        if (so.signal?.aborted) return
        if (why !== undefined) await so.onReconnect?.(step.queen, why)
        const before = cursor.last
        const end = yield* streamFrom(step.queen, jobId, cursor, so, tries)
        if (end.type !== 'lost') return
        tries.missed(step.queen, end.miss)
        why = `${step.queen}: ${end.miss.type === 'not_found' ? end.miss.error.message : end.miss.reason}`
        if (cursor.last > before) tries = queens.call('read', limits, spec)
      }
    },
    close: () => dispatcher.close(),
  }
  return client
}

export type JobClient = ReturnType<typeof createJobClient>

/** The body every error response carries: `{ error: { code, message, field?, details? } }`. */
export function errorFromBody(status: number, body: unknown): ApiaryError {
  const e = errorOf(body)
  // A 503 is a standby's answer to a write, or a queen not ready: the body says which.
  const code = status === 503 && e?.code === 'not_leader' ? 'not_leader' : (STATUS_CODES[status] ?? 'internal')
  return new ApiaryError(code, e?.message ?? `the queen answered HTTP ${status}`, e?.field, e?.details ? { details: e.details } : undefined)
}

function errorOf(body: unknown) {
  return (body as { error?: { code?: string; message?: string; field?: string; details?: Record<string, unknown> } } | null | undefined)?.error
}

/** A queen's 503, with the words the error that lists every queen tried gives it. */
function refusal(body: unknown): Miss {
  const error = errorFromBody(503, body)
  const e = errorOf(body)
  return { type: 'refused', error, reason: e?.message ? `${e.code ?? error.code}: ${e.message}` : 'HTTP 503' }
}

/** A failure to get an answer; `sent` unless the connection surely never opened. */
function downMiss(err: unknown): Miss {
  const code = (err as { code?: unknown } | null)?.code
  const message = errorMessage(err)
  if (typeof code === 'string' && UNTRUSTED_CERT.has(code)) {
    const fix = code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? 'use a URL with a name or address its certificate holds' : code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID' ? 'renew its certificate' : 'give the CA that signed it with --ca FILE (APIARY_CA)'
    return { type: 'down', reason: `its TLS certificate is not trusted (${message}): ${fix}`, sent: false }
  }
  const reason = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' ? `no answer in time (${code})` : typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message
  return { type: 'down', reason, sent: !(typeof code === 'string' && NOT_SENT.has(code)) }
}

/** undefined for a body that is not JSON; null for an empty one. */
function parseJson(text: string): unknown {
  if (text === '') return null
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

function parseEvent(id: string | undefined, data: string): JobEvent {
  const parsed = JobEvent.safeParse(parseJson(data))
  if (!parsed.success) throw new ApiaryError('internal', `event ${id ?? '?'} does not match the contract`, undefined, { cause: parsed.error })
  return parsed.data as JobEvent
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms)
    function done() {
      clearTimeout(t)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })
}

function query(params: Record<string, string | number | undefined>): string {
  const qs = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined) qs.set(k, String(v))
  const s = qs.toString()
  return s ? `?${s}` : ''
}
