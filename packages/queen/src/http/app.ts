import { type Context, Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { z } from 'zod'
import { ApiaryError, isApiaryError, JobId, JobRequest, JobState, type Logger, parseOrThrow, RerunRequest } from '@apiary/shared'
import type { Coordinator } from '../jobs/coordinator.ts'
import type { EventFeed } from '../jobs/event-log.ts'
import type { Presence } from '../presence/presence.ts'
import type { JobStore } from '../store/store.ts'
import { bearerAuth } from './auth.ts'
import { errorBody, STATUS } from './errors.ts'
import { streamJob } from './sse.ts'

export interface AppDeps {
  store: JobStore
  coordinator: Coordinator
  events: EventFeed
  presence: Presence
  log: Logger
  token: string
  /** Readiness beyond "the process answers": the bus is connected, the store open. */
  ready: () => boolean
  /** Whether this queen leads or stands by (reads only). */
  role?: () => 'leader' | 'standby'
  keepaliveMs: number
}

const MAX_BODY = 2 * 1024 * 1024

const ListQuery = z.object({
  state: JobState.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
})
const LastEventId = z.coerce.number().int().min(0)
const LogsQuery = z.object({
  node: z.string().optional(),
  /** A page: chunks after this sequence number, at most `limit` of them. */
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
  /** Bytes of output at most (a sample); whole chunks, the last one cut. */
  maxBytes: z.coerce.number().int().min(1).optional(),
})

async function jsonBody(text: Promise<string>): Promise<unknown> {
  const raw = await text
  if (raw.trim() === '') return {}
  try {
    return JSON.parse(raw)
  } catch {
    throw new ApiaryError('invalid_input', 'body is not valid JSON', 'body')
  }
}

// The rest of an over-long body is never read, so the connection cannot carry another request.
const tooLarge = (c: Context) => c.json(errorBody('invalid_input', `body is larger than ${MAX_BODY} bytes`, 'body'), 400, { connection: 'close' })

/**
 * The queen's HTTP API as a hono app; `main.ts` serves it, tests drive it with `app.request()`.
 * Every error is `{ error: { code, message, field? } }` with the status of its code.
 */
export function createApp(deps: AppDeps): Hono {
  const app = new Hono()
  const { store, coordinator, presence, log } = deps

  app.onError((err, c) => {
    if (isApiaryError(err)) return c.json(errorBody(err.code, err.message, err.field, err.details), STATUS[err.code])
    log.error({ err, path: c.req.path }, 'request failed')
    return c.json(errorBody('internal', 'internal error'), 500)
  })
  app.notFound((c) => c.json(errorBody('not_found', `no route ${c.req.method} ${c.req.path}`), 404))

  app.get('/healthz', (c) => c.json({ ok: true }))
  app.get('/readyz', (c) => {
    const role = deps.role?.() ?? 'leader'
    return deps.ready() ? c.json({ ready: true, role }) : c.json({ ready: false, role }, 503)
  })

  app.use('/v1/*', bearerAuth(deps.token, log))

  app.post(
    '/v1/jobs',
    bodyLimit({ maxSize: MAX_BODY, onError: tooLarge }),
    async (c) => c.json(await coordinator.submit(parseOrThrow(JobRequest, await jsonBody(c.req.text()))), 201),
  )

  // Resolves targets and classifies risk; runs nothing.
  app.post('/v1/plan', bodyLimit({ maxSize: MAX_BODY, onError: tooLarge }), async (c) =>
    c.json(coordinator.plan(parseOrThrow(JobRequest, await jsonBody(c.req.text())))),
  )

  // The same operation on the nodes of the original target snapshot that ended in `only`.
  app.post('/v1/jobs/:id/rerun', bodyLimit({ maxSize: MAX_BODY, onError: tooLarge }), async (c) => {
    const job = jobOr404(c.req.param('id'))
    const body = parseOrThrow(RerunRequest, await jsonBody(c.req.text()))
    const nodes = store
      .nodes(job.id)
      .filter((n) => (body.only as string[]).includes(n.state))
      .map((n) => n.node)
    if (nodes.length === 0) {
      throw new ApiaryError('invalid_input', `only: no node of job ${job.id} ended ${body.only.join(', ')}`, 'only')
    }
    const request = parseOrThrow(JobRequest, {
      operation: job.operation,
      targets: job.targets,
      rollout: job.rollout,
      outputCapBytes: job.outputCapBytes,
      ...(body.confirm ? { confirm: body.confirm } : {}),
    })
    return c.json(await coordinator.submit(request, { nodes, rerunOf: job.id }), 201)
  })

  app.get('/v1/jobs', (c) => {
    const q = parseOrThrow(ListQuery, c.req.query(), 'query')
    return c.json({ jobs: store.listJobs({ ...(q.state ? { state: q.state } : {}), limit: q.limit }) })
  })

  const jobOr404 = (id: string) => {
    const parsedId = JobId.safeParse(id)
    const job = parsedId.success ? store.getJob(id) : undefined
    if (!job) throw new ApiaryError('not_found', `job ${id} does not exist`, 'jobId')
    return job
  }

  app.get('/v1/jobs/:id', (c) => {
    const job = jobOr404(c.req.param('id'))
    return c.json({ ...job, nodes: store.nodes(job.id) })
  })

  app.get('/v1/jobs/:id/logs', (c) => {
    const job = jobOr404(c.req.param('id'))
    const q = parseOrThrow(LogsQuery, c.req.query(), 'query')
    const page = store.output(job.id, q.node, q.after, q.limit)
    const next = page.length === q.limit ? page[page.length - 1]!.seq : null
    let chunks = page
    if (q.maxBytes !== undefined) {
      let left = q.maxBytes
      const kept = []
      for (const ch of chunks) {
        if (left <= 0) break
        kept.push(ch.data.length > left ? { ...ch, data: ch.data.slice(0, left) } : ch)
        left -= ch.data.length
      }
      chunks = kept
    }
    return c.json({ chunks, next })
  })

  app.get('/v1/jobs/:id/stream', (c) => {
    const job = jobOr404(c.req.param('id'))
    const header = c.req.header('last-event-id') ?? c.req.query('after') ?? '0'
    const after = LastEventId.safeParse(header === '' ? '0' : header)
    if (!after.success) throw new ApiaryError('invalid_input', `Last-Event-ID: "${header}" is not a sequence number`, 'Last-Event-ID')
    const output = c.req.query('output')
    if (output !== undefined && output !== 'full' && output !== 'none') {
      throw new ApiaryError('invalid_input', `output: "${output}" must be "full" or "none"`, 'output')
    }
    // Output chunks run to 32 KiB each: smaller pages keep a page's memory bounded.
    return streamJob(c, { store, events: deps.events, log }, job.id, after.data, output === 'full', { keepaliveMs: deps.keepaliveMs, pageSize: output === 'full' ? 64 : 500 })
  })

  app.post('/v1/jobs/:id/cancel', (c) => {
    const job = jobOr404(c.req.param('id'))
    const r = coordinator.cancel(job.id, 'cancelled by request')
    return c.json({ jobId: job.id, state: r.state })
  })

  app.get('/v1/nodes', (c) => c.json({ nodes: presence.nodes() }))

  return app
}
