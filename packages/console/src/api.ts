import type { JobCreated, JobDetail, JobPlan, JobRequestInput, JobSummary, NodeInfo, RerunRequest } from '@apiary/shared'
import type { JobClient } from '@apiary/shared/client'

/** A page of a node's output, as `GET /v1/jobs/:id/logs` answers it. */
export type LogsPage = Awaited<ReturnType<JobClient['logsPage']>>

/** An error answer of the queen, `{ error: { code, message, field?, details? } }`, or a network failure. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

const signedOut = new EventTarget()
/** Runs `fn` whenever the queen answers 401: the session ended, the console shows the sign-in page. */
export function onSignedOut(fn: () => void): () => void {
  signedOut.addEventListener('signed-out', fn)
  return () => signedOut.removeEventListener('signed-out', fn)
}

/**
 * Calls the queen. The session cookie goes along by itself (same origin, HttpOnly: no script
 * here ever sees the token); a body goes as JSON, which also makes the browser send `Origin`.
 */
export async function call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  let res: Response
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...(signal ? { signal } : {}),
    })
  } catch (err) {
    if (signal?.aborted) throw err
    throw new ApiError(0, 'unreachable', 'the queen does not answer: check that it runs, then retry')
  }
  const text = await res.text()
  let parsed: unknown
  try {
    parsed = text === '' ? {} : JSON.parse(text)
  } catch {
    parsed = {}
  }
  if (res.ok) return parsed as T
  const e = (parsed as { error?: { code?: string; message?: string; field?: string; details?: Record<string, unknown> } }).error ?? {}
  if (res.status === 401 && !path.startsWith('/ui/session')) signedOut.dispatchEvent(new Event('signed-out'))
  throw new ApiError(res.status, e.code ?? 'internal', e.message ?? `${res.status} ${res.statusText}`, e.field, e.details)
}

const q = (params: Record<string, string | number | undefined>): string => {
  const s = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined) s.set(k, String(v))
  const t = s.toString()
  return t === '' ? '' : `?${t}`
}
const job = (id: string) => `/v1/jobs/${encodeURIComponent(id)}`

export const api = {
  session: () => call<{ signedIn: boolean }>('GET', '/ui/session'),
  signIn: (token: string) => call<{ signedIn: boolean }>('POST', '/ui/session', { token }),
  signOut: () => call<{ signedIn: boolean }>('DELETE', '/ui/session'),
  jobs: (state?: string, signal?: AbortSignal) => call<{ jobs: JobSummary[] }>('GET', `/v1/jobs${q({ limit: 200, state })}`, undefined, signal),
  job: (id: string, signal?: AbortSignal) => call<JobDetail>('GET', job(id), undefined, signal),
  logs: (id: string, p: { node: string; after?: number; limit?: number; maxBytes?: number }, signal?: AbortSignal) =>
    call<LogsPage>('GET', `${job(id)}/logs${q(p)}`, undefined, signal),
  plan: (req: JobRequestInput, signal?: AbortSignal) => call<JobPlan>('POST', '/v1/plan', req, signal),
  submit: (req: JobRequestInput) => call<JobCreated>('POST', '/v1/jobs', req),
  cancel: (id: string) => call<{ jobId: string; state: string }>('POST', `${job(id)}/cancel`, {}),
  rerun: (id: string, body: RerunRequest) => call<JobCreated>('POST', `${job(id)}/rerun`, body),
  nodes: (signal?: AbortSignal) => call<{ nodes: NodeInfo[] }>('GET', '/v1/nodes', undefined, signal),
  /** The API's OpenAPI 3.1 document. */
  openapi: () => call<Record<string, unknown>>('GET', '/v1/openapi.json'),
  /** The job's events after `after`, live (output left out: the grid needs states, not bytes). */
  streamUrl: (id: string, after: number) => `${job(id)}/stream${q({ after })}`,
}
