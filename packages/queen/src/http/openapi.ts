import { z } from 'zod'
import { type Answer, API_INPUTS, API_OUTPUTS, API_ROUTES, EVENT_KINDS, type RouteKey, type RouteSpec, VERSION } from '@apiary/shared'

type Json = Record<string, unknown>

const REF = (name: string) => `#/components/schemas/${name}`

/** `GET /v1/jobs/:id` → `/v1/jobs/{id}`; the console's catch-all `/ui/*` → `/ui/{path}`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z_]+)/g, '{$1}').replace(/\/\*$/, '/{path}')
}

/** The named schemas as JSON Schema (2020-12), referring to each other by `#/components/schemas/<name>`. */
function components(): Record<string, Json> {
  const out: Record<string, Json> = {}
  for (const [io, named] of [['input', API_INPUTS], ['output', API_OUTPUTS]] as const) {
    const reg = z.registry<{ id: string }>()
    for (const [name, schema] of Object.entries(named)) reg.add(schema, { id: name })
    const { schemas } = z.toJSONSchema(reg, { uri: REF, io, unrepresentable: 'any' }) as { schemas: Record<string, Json> }
    for (const [name, s] of Object.entries(schemas)) {
      const { $schema: _s, $id: _i, ...rest } = s
      out[name] = rest
    }
  }
  return out
}

/** The schema of one value: a reference when it is a named one, else inline. */
function schemaOf(schema: z.ZodType, io: 'input' | 'output'): Json {
  const named = Object.entries(io === 'input' ? API_INPUTS : API_OUTPUTS).find(([, s]) => s === schema)
  if (named) return { $ref: REF(named[0]) }
  const { $schema: _s, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Json
  return rest
}

function answer(a: Answer, description: string): Json {
  if (a instanceof z.ZodType) return { description, content: { 'application/json': { schema: schemaOf(a, 'output') } } }
  return { description: `${description}: ${a.about}`, content: { [a.media]: a.schema ? { schema: schemaOf(a.schema, 'output') } : {} } }
}

const ERROR_WHY: Record<number, string> = {
  400: 'Invalid input; `field` names it',
  401: 'No valid token (or session)',
  403: 'No role of the caller allows it; the message names the role and rule',
  404: 'No such job, user or route',
  409: 'A conflict (a user that exists; the last admin)',
  428: 'A destructive operation needs `confirm.nodes` (`details.nodes` says how many)',
  500: 'An internal error',
  503: 'Not ready, or this queen stands by (writes go to the leader)',
}

function operation(key: RouteKey, spec: RouteSpec): Json {
  const parameters: Json[] = []
  for (const [name, schema] of Object.entries(spec.params ?? {})) {
    parameters.push({ name, in: 'path', required: true, schema: schemaOf(schema, 'input') })
  }
  for (const [name, schema] of Object.entries(spec.headers ?? {})) {
    parameters.push({ name, in: 'header', required: false, schema: schemaOf(schema, 'input') })
  }
  if (key.endsWith('/*')) parameters.push({ name: 'path', in: 'path', required: true, description: 'Any path under it that ends in `/`', schema: { type: 'string' } })
  if (spec.query) {
    const q = z.toJSONSchema(spec.query, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, Json>; required?: string[] }
    for (const [name, schema] of Object.entries(q.properties ?? {})) {
      parameters.push({ name, in: 'query', required: q.required?.includes(name) ?? false, schema })
    }
  }
  if (key === 'GET /v1/jobs/:id/stream') {
    parameters.push({ name: 'Last-Event-ID', in: 'header', required: false, description: 'Resume after this sequence number', schema: { type: 'integer', minimum: 0 } })
  }
  const responses: Json = {}
  for (const [status, a] of Object.entries(spec.ok)) responses[status] = answer(a as Answer, Number(status) < 300 ? 'OK' : 'Not ready')
  const errors = new Set<number>([...(spec.errors ?? []), 500])
  if (spec.body || spec.query || spec.params) errors.add(400)
  if (spec.access !== 'public') errors.add(401)
  if (spec.access === 'submit' || spec.access === 'cancel' || spec.access === 'admin') errors.add(403)
  if (spec.access !== 'public' && key.startsWith('POST ')) errors.add(503)
  for (const status of [...errors].sort()) {
    if (responses[status] !== undefined) continue
    // The console's page and assets answer a miss in plain text; everything else in the one error shape.
    const plain = spec.tag === 'console' && status === 404
    responses[status] = { description: ERROR_WHY[status], content: plain ? { 'text/plain': {} } : { 'application/json': { schema: { $ref: REF('ErrorBody') } } } }
  }
  return {
    operationId: key.replace(/[^A-Za-z0-9]+/g, '_').replace(/_$/, ''),
    summary: spec.summary,
    tags: [spec.tag],
    'x-apiary-access': spec.access,
    ...(spec.access === 'public' ? { security: [] } : {}),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(spec.body ? { requestBody: { required: true, content: { 'application/json': { schema: schemaOf(spec.body, 'input') } } } } : {}),
    responses,
  }
}

/**
 * The queen's API as an OpenAPI 3.1 document, generated from the schemas the routes validate
 * with (`API_ROUTES`, `@apiary/shared`): every route, its access rule, parameters, bodies,
 * answers and error shape, and every event kind of the stream.
 */
export function openApiDocument(): Json {
  const paths: Record<string, Json> = {}
  for (const [key, spec] of Object.entries(API_ROUTES) as Array<[RouteKey, RouteSpec]>) {
    const [method, path] = key.split(' ') as [string, string]
    const p = (paths[openApiPath(path)] ??= {})
    p[method.toLowerCase()] = operation(key, spec)
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'apiary queen',
      version: VERSION,
      description: `Fan commands out across many nodes and watch what happens. Every route but health and the console's needs \`Authorization: Bearer <token>\` (or the console's session cookie); errors are \`{"error": {"code", "message", "field"?}}\`. \`x-apiary-access\` says who may call each route. The event stream's kinds: ${EVENT_KINDS.join(', ')}.`,
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    tags: [
      { name: 'jobs', description: 'Submit, plan, follow, read and cancel jobs' },
      { name: 'nodes', description: 'The fleet' },
      { name: 'users', description: 'Users and their tokens (admin)' },
      { name: 'audit', description: 'The hash-chained audit log (admin)' },
      { name: 'service', description: 'Health and this document' },
      { name: 'console', description: 'The web console at /ui/' },
    ],
    components: {
      schemas: components(),
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A user’s API token' }, session: { type: 'apiKey', in: 'cookie', name: 'apiary_session' } },
    },
    security: [{ bearer: [] }, { session: [] }],
    paths,
  }
}
