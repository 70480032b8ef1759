import { z } from 'zod'
import { ERROR_CODES } from '../errors.ts'
import { AddUserRequest, AuditPage, IssuedToken, MAX_AUDIT_PAGE, UserInfo, UserName } from './access.ts'
import { JobEvent } from './event.ts'
import { JobId, NodeId } from './ids.ts'
import { JobCreated, JobDetail, JobPlan, JobRequest, JobState, JobSummary, NodeInfo, RerunRequest } from './job.ts'

/**
 * The queen's HTTP API as one contract: every route with what it takes (path parameters, query,
 * body) and what it answers, by status. The queen validates with these schemas, the client
 * parses with them, and `GET /v1/openapi.json` is generated from them, so the three cannot
 * drift apart.
 */

/** Every error: `{ error: { code, message, field?, details? } }`, with the status of its code. */
export const ErrorBody = z.object({
  error: z.object({
    code: z.enum(ERROR_CODES),
    message: z.string(),
    /** The input that is wrong: a body field (`targets`), a query parameter (`query.limit`), a header. */
    field: z.string().optional(),
    /** Facts a client may act on (the node count a confirmation needs). */
    details: z.record(z.string(), z.unknown()).optional(),
  }),
})
export type ErrorBody = z.infer<typeof ErrorBody>

export const Health = z.object({ ok: z.literal(true) })
export const Readiness = z.object({ ready: z.boolean(), role: z.enum(['leader', 'standby']) })
export const JobList = z.object({ jobs: z.array(JobSummary) })
export const NodeList = z.object({ nodes: z.array(NodeInfo) })
export const CancelAnswer = z.object({ jobId: JobId, state: z.string() })
export const UserList = z.object({ users: z.array(UserInfo), managed: z.boolean() })
export const Revoked = z.object({ name: UserName, revoked: z.literal(true) })
export const OutputChunk = z.object({ node: NodeId, stream: z.enum(['stdout', 'stderr']), data: z.string(), seq: z.number().int() })
export const LogsPage = z.object({ chunks: z.array(OutputChunk), next: z.number().int().nullable() })
/**
 * `Idempotency-Key` of a submit or re-run: the same key from the same user within the job
 * retention answers with the job it made the first time, so a client may send a submit again
 * (to another queen) when it cannot know whether the first arrived.
 */
export const IDEMPOTENCY_HEADER = 'idempotency-key'
export const IdempotencyKey = z.string().regex(/^[A-Za-z0-9_-]{16,128}$/, 'must be 16 to 128 characters of A-Z, a-z, 0-9, "_" and "-" (a random UUID will do)')
export const SignIn = z.strictObject({ token: z.string().min(1, 'must not be empty').max(4096) })
export const SignedIn = z.object({ signedIn: z.boolean() })

export const MAX_JOBS_PAGE = 1000
export const ListQuery = z.object({
  state: JobState.optional(),
  limit: z.coerce.number().int().min(1).max(MAX_JOBS_PAGE).default(50),
})
export const LogsQuery = z.object({
  node: z.string().optional(),
  /** A page: chunks after this sequence number, at most `limit` of them. */
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
  /** Bytes of output at most (a sample); whole chunks, the last one cut. */
  maxBytes: z.coerce.number().int().min(1).optional(),
})
export const StreamQuery = z.object({
  /** Events after this sequence number (as `Last-Event-ID`, which wins when both are given). */
  after: z.coerce.number().int().min(0).optional(),
  /** `full`: node output chunks too. */
  output: z.enum(['full', 'none']).optional(),
})
export const AuditQuery = z.object({
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(MAX_AUDIT_PAGE).default(100),
  /** Records from this time on (ms since the epoch). */
  since: z.coerce.number().int().min(0).optional(),
  user: UserName.optional(),
})

/** Who may call a route: `public` anyone; `read` every user; `submit` a role allowing the whole submission; `cancel` the submitter or a role acting on others' jobs; `admin` an admin role. */
export type Access = 'public' | 'read' | 'submit' | 'cancel' | 'admin'

/** What a route answers with a status: a JSON body's schema, or another media type. */
export type Answer = z.ZodType | { media: 'text/html' | 'text/event-stream' | 'text/plain' | 'application/octet-stream' | 'application/json'; schema?: z.ZodType; about: string }

export interface RouteSpec {
  access: Access
  summary: string
  tag: 'jobs' | 'nodes' | 'users' | 'audit' | 'service' | 'console'
  params?: Record<string, z.ZodType>
  query?: z.ZodObject
  /** Request headers it reads, beyond authentication. */
  headers?: Record<string, z.ZodType>
  body?: z.ZodType
  /** The successful answers; errors follow from the access rule and the inputs. */
  ok: Partial<Record<200 | 201 | 503, Answer>>
  /** Errors beyond those the access rule and inputs imply (400 for a body or query, 401 and 403 by the rule, 500). */
  errors?: Array<401 | 403 | 404 | 409 | 428 | 503>
}

const id = { id: JobId }
const name = { name: UserName }

/** Every route the queen serves, by `METHOD /path` (hono's `:param` syntax). A route not here fails the queen at start. */
export const API_ROUTES = {
  'GET /healthz': { access: 'public', tag: 'service', summary: 'The process answers.', ok: { 200: Health } },
  'GET /readyz': { access: 'public', tag: 'service', summary: 'Ready to serve: the bus connected, the store open; whether this queen leads or stands by.', ok: { 200: Readiness, 503: Readiness } },
  'GET /metrics': { access: 'read', tag: 'service', summary: 'This queen’s metrics, for Prometheus (no job or node ids among the labels).', ok: { 200: { media: 'text/plain', about: 'The Prometheus text format' } } },
  'GET /v1/openapi.json': { access: 'read', tag: 'service', summary: 'This document.', ok: { 200: { media: 'application/json', about: 'An OpenAPI 3.1 document' } } },
  'POST /v1/jobs': {
    access: 'submit',
    tag: 'jobs',
    summary: 'Submit a job: an operation on the nodes a selector resolves to, rolled out by the rollout’s rules. One role of the caller must allow the whole resolved plan; a destructive operation needs `confirm.nodes` equal to the node count (428 otherwise). With `Idempotency-Key`, the same key from the same user answers with the job it made (409 if it came with another request).',
    headers: { 'Idempotency-Key': IdempotencyKey },
    body: JobRequest,
    ok: { 201: JobCreated },
    errors: [409, 428, 503],
  },
  'POST /v1/plan': { access: 'read', tag: 'jobs', summary: 'What a job would do (targets, regions, offline nodes, a sample, risk class) and whether the caller’s roles allow it; runs nothing.', body: JobRequest, ok: { 200: JobPlan } },
  'POST /v1/jobs/:id/rerun': {
    access: 'submit',
    tag: 'jobs',
    summary: 'The same operation again on the nodes of the original snapshot that ended in `only`. An ended job’s env values and stdin are forgotten: give them again. `Idempotency-Key` as for a submit.',
    params: id,
    headers: { 'Idempotency-Key': IdempotencyKey },
    body: RerunRequest,
    ok: { 201: JobCreated },
    errors: [404, 409, 428, 503],
  },
  'GET /v1/jobs': { access: 'read', tag: 'jobs', summary: 'Recent jobs, newest first.', query: ListQuery, ok: { 200: JobList } },
  'GET /v1/jobs/:id': { access: 'read', tag: 'jobs', summary: 'A job’s summary and every node’s state, exit code, cause and bytes.', params: id, ok: { 200: JobDetail }, errors: [404] },
  'GET /v1/jobs/:id/logs': { access: 'read', tag: 'jobs', summary: 'Stored output chunks in order, a page at a time (`next` starts the following page).', params: id, query: LogsQuery, ok: { 200: LogsPage }, errors: [404] },
  'GET /v1/jobs/:id/stream': {
    access: 'read',
    tag: 'jobs',
    summary: 'The job’s events over Server-Sent Events: `id:` the gapless per-job sequence, `event:` the kind, `data:` the event; `Last-Event-ID` (or `after`) resumes; `: keepalive` comments; ends after `job.finished`.',
    params: id,
    query: StreamQuery,
    ok: { 200: { media: 'text/event-stream', schema: JobEvent, about: 'Each message’s `data` is one event' } },
    errors: [404],
  },
  'POST /v1/jobs/:id/cancel': { access: 'cancel', tag: 'jobs', summary: 'Stop dispatching and kill running processes; each node confirms.', params: id, ok: { 200: CancelAnswer }, errors: [404] },
  'GET /v1/nodes': { access: 'read', tag: 'nodes', summary: 'Every node with region, labels, executor, presence, last contact and breaker.', ok: { 200: NodeList } },
  'GET /v1/users': { access: 'admin', tag: 'users', summary: 'Users and their roles (never a token or its hash).', ok: { 200: UserList } },
  'POST /v1/users': { access: 'admin', tag: 'users', summary: 'Add a user; the answer holds their token, shown this once.', body: AddUserRequest, ok: { 201: IssuedToken }, errors: [409] },
  'POST /v1/users/:name/rotate': { access: 'admin', tag: 'users', summary: 'A new token for the user; the old one, and the streams it opened, stop at once.', params: name, ok: { 200: IssuedToken }, errors: [404] },
  'POST /v1/users/:name/revoke': { access: 'admin', tag: 'users', summary: 'Remove the user; their token, and the streams it opened, stop at once. Never the last admin (409).', params: name, ok: { 200: Revoked }, errors: [404, 409] },
  'GET /v1/audit': { access: 'admin', tag: 'audit', summary: 'Audit records, oldest first, a page at a time; `head` is the chain’s last record.', query: AuditQuery, ok: { 200: AuditPage } },
  'GET /ui': { access: 'public', tag: 'console', summary: 'The web console’s page.', ok: { 200: { media: 'text/html', about: 'The console' }, 503: { media: 'text/html', about: 'The console is not built' } } },
  'GET /ui/*': { access: 'public', tag: 'console', summary: 'The console’s page under any of its paths that end in `/`.', ok: { 200: { media: 'text/html', about: 'The console' } }, errors: [404] },
  'GET /ui/assets/:name': { access: 'public', tag: 'console', summary: 'A console asset (hashed names are cached immutable).', params: { name: z.string() }, ok: { 200: { media: 'application/octet-stream', about: 'JavaScript, CSS or an image' } }, errors: [404] },
  'GET /ui/session': { access: 'public', tag: 'console', summary: 'Whether the browser’s session cookie is signed in (401 if not).', ok: { 200: SignedIn }, errors: [401] },
  'POST /ui/session': { access: 'public', tag: 'console', summary: 'Sign in with a user’s token: sets an HttpOnly, SameSite=Strict session cookie. Only from the queen’s own Origin (403 otherwise).', body: SignIn, ok: { 200: SignedIn }, errors: [401, 403] },
  'DELETE /ui/session': { access: 'public', tag: 'console', summary: 'Sign out. Only from the queen’s own Origin (403 otherwise).', ok: { 200: SignedIn }, errors: [403] },
} as const satisfies Record<string, RouteSpec>
export type RouteKey = keyof typeof API_ROUTES

/** The named schemas of the API, as the OpenAPI document's components: what requests take (read as input) and what answers hold. */
export const API_INPUTS = { JobRequest, RerunRequest, AddUserRequest, SignIn } as const
export const API_OUTPUTS = {
  ErrorBody,
  Health,
  Readiness,
  JobCreated,
  JobPlan,
  JobList,
  JobSummary,
  JobDetail,
  LogsPage,
  JobEvent,
  CancelAnswer,
  NodeList,
  UserList,
  IssuedToken,
  Revoked,
  AuditPage,
  SignedIn,
} as const
