import { type Context, Hono, type MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { z } from 'zod'
import {
  type Access,
  AddUserRequest,
  API_ROUTES,
  ApiaryError,
  AuditQuery,
  digestOf,
  IDEMPOTENCY_HEADER,
  IdempotencyKey,
  isApiaryError,
  JobId,
  JobRequest,
  type JobSummary,
  ListQuery,
  type Logger,
  LogsQuery,
  parseOrThrow,
  redactOperation,
  RerunRequest,
  type RouteKey,
  UserName,
} from '@apiary/shared'
import type { Auditor } from '../access/auditor.ts'
import type { AuditLog } from '../access/audit.ts'
import type { UserRegistry } from '../access/users.ts'
import type { Coordinator } from '../jobs/coordinator.ts'
import type { EventFeed } from '../jobs/event-log.ts'
import { type Plan, planJob } from '../jobs/plan.ts'
import type { Presence } from '../presence/presence.ts'
import type { JobStore } from '../store/store.ts'
import { type AppEnv, bearerAuth } from './auth.ts'
import { errorBody, STATUS } from './errors.ts'
import { SessionStore } from './session.ts'
import { streamJob } from './sse.ts'
import { openApiDocument } from './openapi.ts'
import { createUi } from './ui.ts'

export interface AppDeps {
  store: JobStore
  coordinator: Coordinator
  events: EventFeed
  presence: Presence
  log: Logger
  /** Who may call: every request is made as one of them. */
  users: UserRegistry
  /** Where decisions are recorded. */
  auditor: Auditor
  audit: AuditLog
  /** Readiness beyond "the process answers": the bus is connected, the store open. */
  ready: () => boolean
  /** Whether this queen leads or stands by (reads only). */
  role?: () => 'leader' | 'standby'
  keepaliveMs: number
  /** The origin browsers reach the queen at, behind a proxy (`--public-url`); default each request's own. */
  publicOrigin?: string
  /** What `GET /metrics` serves (Prometheus text). */
  metrics?: { render(): Promise<{ body: string; contentType: string }> }
}

const MAX_BODY = 2 * 1024 * 1024
/** A users request is a name and a few roles. */
const MAX_USERS_BODY = 16 * 1024

/**
 * Who may call each route (`API_ROUTES` of `@apiary/shared`, where each route's inputs and
 * answers are too). `public`: anyone; `read`: every user; `submit`: a role that allows the
 * whole submission (checked against the resolved plan); `cancel`: the job's submitter or a
 * role that may act on others' jobs; `admin`: a role that administers users and reads the audit
 * log. A route registered without a rule there fails at start, so none can skip authorisation.
 * The console's routes (`/ui`) are public: a page, hashed assets and the sign-in, which checks
 * the token it is given; every call the console makes goes to /v1 as the signed-in user.
 */
export const ROUTE_ACCESS: { readonly [K in RouteKey]: Access } = Object.fromEntries(Object.entries(API_ROUTES).map(([k, v]) => [k, v.access])) as { [K in RouteKey]: Access }

const LastEventId = z.coerce.number().int().min(0)

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
const tooLargeFor = (max: number) => (c: Context) => c.json(errorBody('invalid_input', `body is larger than ${max} bytes`, 'body'), 400, { connection: 'close' })
const tooLarge = tooLargeFor(MAX_BODY)

/**
 * The queen's HTTP API as a hono app; `main.ts` serves it, tests drive it with `app.request()`.
 * Every error is `{ error: { code, message, field? } }` with the status of its code.
 */
export function createApp(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  const { store, coordinator, presence, log, users, auditor } = deps

  app.onError((err, c) => {
    if (isApiaryError(err)) return c.json(errorBody(err.code, err.message, err.field, err.details), STATUS[err.code])
    log.error({ err, path: c.req.path }, 'request failed')
    return c.json(errorBody('internal', 'internal error'), 500)
  })
  app.notFound((c) => c.json(errorBody('not_found', `no route ${c.req.method} ${c.req.path}`), 404))

  const principal = (c: Context<AppEnv>) => c.get('auth').user
  const who = (c: Context<AppEnv>) => ({ user: principal(c).name, source: c.get('source') })

  /** Refuses a request: recorded, logged, and answered 403 naming the rule. */
  const refuse = (c: Context<AppEnv>, action: string, reason: string, detail: Record<string, unknown> = {}): never => {
    auditor.record({ kind: 'refused', ...who(c), detail: { action, route: `${c.req.method} ${c.req.routePath}`, reason, ...detail } })
    log.info({ user: principal(c).name, action, reason }, 'request refused')
    throw new ApiaryError('forbidden', reason)
  }

  const adminOnly: MiddlewareHandler<AppEnv> = async (c, next) => {
    const v = users.policy.admin(principal(c))
    if (!v.allowed) refuse(c, 'admin', v.reason!)
    await next()
  }

  /** Registers a route under its rule in `ROUTE_ACCESS`; an admin route gets the admin check before its handlers. */
  const route = (key: RouteKey, ...handlers: MiddlewareHandler<AppEnv>[]) => {
    const rule = ROUTE_ACCESS[key]
    const [method, path] = key.split(' ') as [string, string]
    if (rule !== 'public' && !path.startsWith('/v1/') && path !== '/metrics') throw new Error(`route ${key}: only /v1/ routes and /metrics are authenticated`)
    app.on(method, [path], ...(rule === 'admin' ? [adminOnly, ...handlers] : handlers))
  }

  route('GET /healthz', async (c) => c.json({ ok: true }))
  route('GET /readyz', async (c) => {
    const role = deps.role?.() ?? 'leader'
    return deps.ready() ? c.json({ ready: true, role }) : c.json({ ready: false, role }, 503)
  })

  // The console: its page, assets and sign-in are public (a sign-in checks the token itself,
  // and is recorded as a login or a failed authentication); its calls go to /v1 as the user.
  const sessions = new SessionStore(deps.publicOrigin ? { origin: deps.publicOrigin } : {})
  const signIn = (token: string, source: string) => {
    const auth = users.authenticate(token)
    if (auth) auditor.seen(auth.user.name, source)
    else auditor.failed(source, 'console sign-in with an unknown token')
    return auth !== undefined
  }
  const ui = createUi({ sessions, verify: signIn, log })
  for (const r of ui.routes) {
    if (r.method === 'ALL') continue
    const key = `${r.method} /ui${r.path === '/' ? '' : r.path}`
    if (!(key in ROUTE_ACCESS)) throw new Error(`route ${key}: not in ROUTE_ACCESS`)
  }
  app.route('/ui', ui)
  app.use('/v1/*', bearerAuth(users, auditor, log, sessions))
  // Where Prometheus looks, as any signed-in user (a viewer's token will do).
  app.use('/metrics', bearerAuth(users, auditor, log, sessions))
  route('GET /metrics', async (c) => {
    const { body, contentType } = (await deps.metrics?.render()) ?? { body: '', contentType: 'text/plain; version=0.0.4; charset=utf-8' }
    return c.body(body, 200, { 'content-type': contentType, 'cache-control': 'no-store' })
  })

  /** What the audit keeps of a submission: the operation without secrets, how many targets and a digest of which. */
  const submission = (request: JobRequest, plan: Plan) => {
    const ids = plan.targets.map((t) => t.id).sort()
    return {
      operation: redactOperation(request.operation),
      targets: request.targets,
      nodes: ids.length,
      targetsDigest: digestOf(ids),
      risk: plan.risk.class,
      confirm: request.confirm?.nodes ?? null,
    }
  }

  /** Submits as the caller: one of their roles must allow the resolved plan, else it is refused (and recorded). */
  const submitAs = async (c: Context<AppEnv>, request: JobRequest, opts: { nodes?: string[]; rerunOf?: string } = {}) => {
    const user = principal(c)
    const header = c.req.header(IDEMPOTENCY_HEADER)
    const requestKey = header === undefined ? undefined : parseOrThrow(IdempotencyKey, header, 'Idempotency-Key')
    let seen: Plan | undefined
    const action = opts.rerunOf ? 'rerun' : 'submit'
    const created = await coordinator
      .submit(request, {
        ...opts,
        submittedBy: user.name,
        ...(requestKey !== undefined ? { requestKey } : {}),
        authorize: (plan) => {
          seen = plan
          const v = users.policy.submission(user, { operation: request.operation.type, targets: plan.targets, risk: plan.risk.class })
          if (!v.allowed) refuse(c, action, v.reason!, { ...submission(request, plan), ...(opts.rerunOf ? { rerunOf: opts.rerunOf } : {}) })
        },
      })
      .catch((err: unknown) => {
        // The destructive-operation gate refused it (no confirmation, or the wrong count): recorded too.
        if (seen && isApiaryError(err, 'confirmation_required')) {
          auditor.record({ kind: 'refused', ...who(c), detail: { action, route: `${c.req.method} ${c.req.routePath}`, reason: err.message, ...submission(request, seen), ...(opts.rerunOf ? { rerunOf: opts.rerunOf } : {}) } })
        }
        throw err
      })
    // A request sent again with its key made nothing new: the first one was recorded.
    if (created.replayed) return { jobId: created.jobId, nodes: created.nodes }
    const detail = { jobId: created.jobId, ...(seen ? submission(request, seen) : {}), ...(opts.rerunOf ? { rerunOf: opts.rerunOf } : {}) }
    auditor.record({ kind: opts.rerunOf ? 'job.rerun' : 'job.submitted', ...who(c), detail })
    return { jobId: created.jobId, nodes: created.nodes }
  }

  /** The caller may act on (cancel, re-run) this job: theirs, or a role that acts on others'. */
  const mayActOn = (c: Context<AppEnv>, job: JobSummary, action: string) => {
    const v = users.policy.cancel(principal(c), job.submittedBy ?? null)
    if (!v.allowed) refuse(c, action, v.reason!, { jobId: job.id, owner: job.submittedBy ?? null })
  }

  route('POST /v1/jobs', bodyLimit({ maxSize: MAX_BODY, onError: tooLarge }), async (c) =>
    c.json(await submitAs(c, parseOrThrow(JobRequest, await jsonBody(c.req.text()))), 201),
  )

  // Resolves targets and classifies risk; runs nothing. Says whether a role of the caller would allow it.
  route('POST /v1/plan', bodyLimit({ maxSize: MAX_BODY, onError: tooLarge }), async (c) => {
    const request = parseOrThrow(JobRequest, await jsonBody(c.req.text()))
    const summary = coordinator.plan(request)
    const plan = planJob(request, presence.nodes())
    const access = users.policy.submission(principal(c), { operation: request.operation.type, targets: plan.targets, risk: plan.risk.class })
    return c.json({ ...summary, access })
  })

  // The same operation on the nodes of the original target snapshot that ended in `only`.
  route('POST /v1/jobs/:id/rerun', bodyLimit({ maxSize: MAX_BODY, onError: tooLarge }), async (c) => {
    const job = jobOr404(c.req.param('id')!)
    const body = parseOrThrow(RerunRequest, await jsonBody(c.req.text()))
    mayActOn(c, job, 'rerun')
    const nodes = store
      .nodes(job.id)
      .filter((n) => (body.only as string[]).includes(n.state))
      .map((n) => n.node)
    if (nodes.length === 0) {
      throw new ApiaryError('invalid_input', `only: no node of job ${job.id} ended ${body.only.join(', ')}`, 'only')
    }
    const request = parseOrThrow(JobRequest, {
      operation: await coordinator.rerunOperation(job, body, principal(c).name),
      targets: job.targets,
      rollout: job.rollout,
      outputCapBytes: job.outputCapBytes,
      ...(body.confirm ? { confirm: body.confirm } : {}),
    })
    return c.json(await submitAs(c, request, { nodes, rerunOf: job.id }), 201)
  })

  route('GET /v1/jobs', async (c) => {
    const q = parseOrThrow(ListQuery, c.req.query(), 'query')
    return c.json({ jobs: store.listJobs({ ...(q.state ? { state: q.state } : {}), limit: q.limit }) })
  })

  const jobOr404 = (id: string) => {
    const parsedId = JobId.safeParse(id)
    const job = parsedId.success ? store.getJob(id) : undefined
    if (!job) throw new ApiaryError('not_found', `job ${id} does not exist`, 'jobId')
    return job
  }

  route('GET /v1/jobs/:id', async (c) => {
    const job = jobOr404(c.req.param('id')!)
    return c.json({ ...job, nodes: store.nodes(job.id) })
  })

  route('GET /v1/jobs/:id/logs', async (c) => {
    const job = jobOr404(c.req.param('id')!)
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

  route('GET /v1/jobs/:id/stream', async (c) => {
    const job = jobOr404(c.req.param('id')!)
    const header = c.req.header('last-event-id') ?? c.req.query('after') ?? '0'
    const after = LastEventId.safeParse(header === '' ? '0' : header)
    if (!after.success) throw new ApiaryError('invalid_input', `Last-Event-ID: "${header}" is not a sequence number`, 'Last-Event-ID')
    const output = c.req.query('output')
    if (output !== undefined && output !== 'full' && output !== 'none') {
      throw new ApiaryError('invalid_input', `output: "${output}" must be "full" or "none"`, 'output')
    }
    // Output chunks run to 32 KiB each: smaller pages keep a page's memory bounded.
    return streamJob(c, { store, events: deps.events, log }, job.id, after.data, output === 'full', {
      keepaliveMs: deps.keepaliveMs,
      pageSize: output === 'full' ? 64 : 500,
      // A rotated or revoked token ends the stream it opened.
      signal: c.get('auth').signal,
    })
  })

  route('POST /v1/jobs/:id/cancel', async (c) => {
    const job = jobOr404(c.req.param('id')!)
    mayActOn(c, job, 'cancel')
    const r = coordinator.cancel(job.id, 'cancelled by request')
    auditor.record({ kind: 'job.cancelled', ...who(c), detail: { jobId: job.id, owner: job.submittedBy ?? null, state: r.state } })
    return c.json({ jobId: job.id, state: r.state })
  })

  route('GET /v1/nodes', async (c) => c.json({ nodes: presence.nodes() }))

  // Generated once: the schemas do not change while the queen runs.
  let doc: Record<string, unknown> | undefined
  route('GET /v1/openapi.json', async (c) => c.json((doc ??= openApiDocument())))

  // Users: the token of an added or rotated user is in this one answer and nowhere else. An
  // admin grants, rotates and revokes only roles whose every power it holds.
  const mayGrant = (c: Context<AppEnv>, action: string, roles: readonly string[]) => {
    const v = users.policy.grant(principal(c), roles)
    if (!v.allowed) refuse(c, action, v.reason!, { roles })
  }
  const nameParam = (c: Context<AppEnv>) => parseOrThrow(UserName, c.req.param('name'), 'name')
  route('GET /v1/users', async (c) => c.json({ users: users.list(), managed: users.managed }))
  route('POST /v1/users', bodyLimit({ maxSize: MAX_USERS_BODY, onError: tooLargeFor(MAX_USERS_BODY) }), async (c) => {
    const body = parseOrThrow(AddUserRequest, await jsonBody(c.req.text()))
    mayGrant(c, 'add user', body.roles)
    const { token, user } = await users.add(body.name, body.roles)
    auditor.record({ kind: 'user.added', ...who(c), detail: { name: user.name, roles: user.roles } })
    return c.json({ ...user, token }, 201, { 'cache-control': 'no-store' })
  })
  route('POST /v1/users/:name/rotate', async (c) => {
    mayGrant(c, 'rotate user', users.get(nameParam(c))?.roles ?? [])
    const { token, user } = await users.rotate(nameParam(c))
    auditor.record({ kind: 'user.rotated', ...who(c), detail: { name: user.name } })
    return c.json({ ...user, token }, 200, { 'cache-control': 'no-store' })
  })
  route('POST /v1/users/:name/revoke', async (c) => {
    mayGrant(c, 'revoke user', users.get(nameParam(c))?.roles ?? [])
    const user = await users.revoke(nameParam(c))
    auditor.record({ kind: 'user.revoked', ...who(c), detail: { name: user.name, roles: user.roles } })
    return c.json({ name: user.name, revoked: true })
  })

  route('GET /v1/audit', async (c) => {
    const q = parseOrThrow(AuditQuery, c.req.query(), 'query')
    return c.json(deps.audit.page(q.after, q.limit, { ...(q.since !== undefined ? { since: q.since } : {}), ...(q.user ? { user: q.user } : {}) }))
  })

  return app
}
