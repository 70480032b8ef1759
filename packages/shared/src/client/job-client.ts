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
import { parseSse } from './sse.ts'
import { z as zod } from 'zod'

export interface JobClientOptions {
  /** The queen's base URL, e.g. `http://127.0.0.1:7070`. */
  url: string
  token: string
  /** Per-request timeout for plain calls (not for streams). */
  timeoutMs?: number
}

export interface StreamOptions {
  /** Resume after this sequence number (sent as `Last-Event-ID`). */
  after?: number
  /** Also carry per-node output chunks. */
  output?: boolean
  signal?: AbortSignal
  /** How long a dropped stream is retried without progress before giving up (default 60 s). */
  reconnectForMs?: number
}

const STATUS_CODES: Record<number, ErrorCode> = { 400: 'invalid_input', 401: 'unauthorized', 404: 'not_found', 409: 'conflict', 428: 'confirmation_required', 503: 'unavailable' }

/**
 * The queen's HTTP API as typed calls; used by keeper and the tests.
 * @example
 * const client = createJobClient({ url, token })
 * const { jobId } = await client.submit({ operation: { type: 'ping' }, targets: 'all' })
 * for await (const ev of client.stream(jobId)) console.log(ev.human)
 */
export function createJobClient(opts: JobClientOptions) {
  const base = opts.url.replace(/\/+$/, '')
  const dispatcher = new Agent({ keepAliveTimeout: 10_000, connections: 8 })
  const auth = { authorization: `Bearer ${opts.token}` }

  async function call<S extends z.ZodType>(method: 'GET' | 'POST', path: string, schema: S, body?: unknown): Promise<z.output<S>> {
    let res
    try {
      res = await request(`${base}${path}`, {
        method,
        dispatcher,
        headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? null : JSON.stringify(body),
        headersTimeout: opts.timeoutMs ?? 30_000,
        bodyTimeout: opts.timeoutMs ?? 30_000,
      })
    } catch (err) {
      throw new ApiaryError('unreachable', `cannot reach the queen at ${base}: ${errorMessage(err)}`, undefined, { cause: err })
    }
    const text = await res.body.text()
    let json: unknown
    try {
      json = text === '' ? null : JSON.parse(text)
    } catch (err) {
      throw new ApiaryError('internal', `the queen answered ${res.statusCode} with a body that is not JSON`, undefined, { cause: err })
    }
    if (res.statusCode >= 400) throw errorFromBody(res.statusCode, json)
    const parsed = schema.safeParse(json)
    if (!parsed.success) {
      throw new ApiaryError('internal', `the queen's answer to ${method} ${path} does not match the contract`, undefined, { cause: parsed.error })
    }
    return parsed.data
  }

  async function* streamOnce(jobId: string, after: number, so: StreamOptions): AsyncGenerator<JobEvent> {
    const q = so.output ? '?output=full' : ''
    let res
    try {
      res = await request(`${base}/v1/jobs/${encodeURIComponent(jobId)}/stream${q}`, {
        method: 'GET',
        dispatcher,
        headers: { ...auth, accept: 'text/event-stream', ...(after > 0 ? { 'last-event-id': String(after) } : {}) },
        signal: so.signal ?? null,
        bodyTimeout: 0,
        headersTimeout: opts.timeoutMs ?? 30_000,
      })
    } catch (err) {
      if (so.signal?.aborted) return
      throw new ApiaryError('unreachable', `cannot reach the queen at ${base}: ${errorMessage(err)}`, undefined, { cause: err })
    }
    if (res.statusCode >= 400) {
      const text = await res.body.text()
      let json: unknown = null
      try {
        json = JSON.parse(text)
      } catch {
        // keep null: the status alone explains it
      }
      throw errorFromBody(res.statusCode, json)
    }
    try {
      for await (const msg of parseSse(res.body)) {
        const parsed = JobEvent.safeParse(JSON.parse(msg.data))
        if (!parsed.success) throw new ApiaryError('internal', `event ${msg.id ?? '?'} does not match the contract`, undefined, { cause: parsed.error })
        yield parsed.data as JobEvent
      }
    } catch (err) {
      if (so.signal?.aborted) return
      throw err
    }
  }

  return {
    url: base,
    submit: (req: JobRequestInput) => call('POST', '/v1/jobs', JobCreated, req),
    /** What a job would do (targets, regions, offline nodes, risk), without running it. */
    plan: (req: JobRequestInput) => call('POST', '/v1/plan', JobPlan, req),
    /** The same operation on the nodes of the original snapshot that ended in `only`. */
    rerun: (jobId: string, req: RerunRequest = {}) => call('POST', `/v1/jobs/${encodeURIComponent(jobId)}/rerun`, JobCreated, req),
    list: (filter: { state?: JobState; limit?: number } = {}) => {
      const qs = new URLSearchParams()
      if (filter.state) qs.set('state', filter.state)
      if (filter.limit) qs.set('limit', String(filter.limit))
      const s = qs.toString()
      return call('GET', `/v1/jobs${s ? `?${s}` : ''}`, zod.object({ jobs: zod.array(JobSummary) })).then((r) => r.jobs)
    },
    get: (jobId: string) => call('GET', `/v1/jobs/${encodeURIComponent(jobId)}`, JobDetail),
    cancel: (jobId: string) => call('POST', `/v1/jobs/${encodeURIComponent(jobId)}/cancel`, zod.object({ jobId: zod.string(), state: zod.string() })),
    nodes: () => call('GET', '/v1/nodes', zod.object({ nodes: zod.array(NodeInfo) })).then((r) => r.nodes),
    /**
     * Node output as stored, in order, with the stream each chunk came from: one page (`next`
     * is where the following one starts, null at the end). `maxBytes` cuts the page short.
     */
    logsPage: (jobId: string, q: { node?: string; maxBytes?: number; after?: number; limit?: number } = {}) =>
      call(
        'GET',
        `/v1/jobs/${encodeURIComponent(jobId)}/logs${query(q)}`,
        zod.object({
          chunks: zod.array(zod.object({ node: zod.string(), stream: zod.enum(['stdout', 'stderr']), data: zod.string(), seq: zod.number() })),
          next: zod.number().nullable(),
        }),
      ),
    /** Every output chunk of a job (or one node), page by page. */
    async *logs(jobId: string, node?: string) {
      let after = 0
      for (;;) {
        const page = await this.logsPage(jobId, { ...(node ? { node } : {}), after })
        yield* page.chunks
        if (page.next === null) return
        after = page.next
      }
    },
    /**
     * The job's events in order, from `after` on, ending after `job.finished`. A dropped
     * connection is re-opened with `Last-Event-ID`, so nothing is lost or repeated.
     */
    async *stream(jobId: string, so: StreamOptions = {}): AsyncGenerator<JobEvent> {
      let after = so.after ?? 0
      // A stream that drops (a queen restart, a proxy's idle timeout) is re-opened from where it
      // stopped, with backoff, for as long as `reconnectForMs` passes without any progress.
      const patience = so.reconnectForMs ?? 60_000
      let lostSince: number | undefined
      let wait = 250
      for (;;) {
        let cause: unknown
        try {
          for await (const ev of streamOnce(jobId, after, so)) {
            if (ev.seq <= after) continue
            after = ev.seq
            lostSince = undefined
            wait = 250
            yield ev
            if (ev.kind === 'job.finished') return
          }
          if (so.signal?.aborted) return
        } catch (err) {
          if (so.signal?.aborted) return
          // The queen answered and said no: retrying will not change that.
          if (isApiaryError(err) && err.code !== 'unreachable') throw err
          cause = err
        }
        lostSince ??= Date.now()
        if (Date.now() - lostSince > patience) {
          throw new ApiaryError('unreachable', `lost the event stream of ${jobId} and could not get it back for ${Math.round(patience / 1000)} s`, undefined, { cause })
        }
        await sleep(wait, so.signal)
        wait = Math.min(wait * 2, 5000)
      }
    },
    close: () => dispatcher.close(),
  }
}

export type JobClient = ReturnType<typeof createJobClient>

/** The body every error response carries: `{ error: { code, message, field?, details? } }`. */
export function errorFromBody(status: number, body: unknown): ApiaryError {
  const e = (body as { error?: { code?: string; message?: string; field?: string; details?: Record<string, unknown> } } | null)?.error
  const code = STATUS_CODES[status] ?? 'internal'
  return new ApiaryError(code, e?.message ?? `the queen answered HTTP ${status}`, e?.field, e?.details ? { details: e.details } : undefined)
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
