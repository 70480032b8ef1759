import { randomBytes } from 'node:crypto'
import type { Context } from 'hono'
import { getCookie } from 'hono/cookie'

/** The web console's session cookie: a random id, never the token it stands for. */
export const SESSION_COOKIE = 'apiary_session'
export const SESSION_IDLE_MS = 12 * 3600 * 1000
export const MAX_SESSIONS = 10_000

export interface SessionStoreOptions {
  now?: () => number
  /** A session unused this long is gone; default 12 h. */
  idleMs?: number
  /** Sessions held at most; past it the least recently used one ends. Default 10,000. */
  maxSessions?: number
  /**
   * The origin browsers see the queen at (`https://apiary.example`), when a proxy in front
   * terminates TLS or rewrites the host: requests must come from it. Default: the request's own.
   */
  origin?: string
}

/**
 * The web console's sign-ins, in memory: session id → the API token it was opened with. A
 * restart signs everyone out, which costs a sign-in and keeps no token on disk. The map's
 * insertion order is its recency order (a use moves a session to the end), so the least
 * recently used session is always the first.
 */
export class SessionStore {
  readonly #byId = new Map<string, { token: string; seen: number }>()
  readonly #now: () => number
  readonly #idleMs: number
  readonly #max: number
  /** The queen's public origin, if set (`SessionStoreOptions.origin`). */
  readonly origin: string | undefined

  constructor(o: SessionStoreOptions = {}) {
    this.origin = o.origin
    this.#now = o.now ?? Date.now
    this.#idleMs = o.idleMs ?? SESSION_IDLE_MS
    this.#max = o.maxSessions ?? MAX_SESSIONS
  }

  get size(): number {
    return this.#byId.size
  }

  /** Opens a session for `token` (already checked) and answers its id: 256 random bits. */
  create(token: string): string {
    this.#prune()
    // Bounded: a caller signing in in a loop ends its own oldest sessions, not the queen's memory.
    while (this.#byId.size >= this.#max) this.#byId.delete(this.#byId.keys().next().value!)
    const id = randomBytes(32).toString('base64url')
    this.#byId.set(id, { token, seen: this.#now() })
    return id
  }

  /** The token session `id` stands for, or undefined (unknown, ended, idle too long); a use keeps it alive. */
  token(id: string): string | undefined {
    const s = this.#byId.get(id)
    if (!s) return undefined
    const now = this.#now()
    this.#byId.delete(id)
    if (now - s.seen > this.#idleMs) return undefined
    s.seen = now
    this.#byId.set(id, s)
    return s.token
  }

  delete(id: string): void {
    this.#byId.delete(id)
  }

  /** Ends every session opened with `token` (a token revoked or replaced). */
  deleteToken(token: string): void {
    for (const [id, s] of this.#byId) if (s.token === token) this.#byId.delete(id)
  }

  #prune(): void {
    const oldest = this.#now() - this.#idleMs
    for (const [id, s] of this.#byId) {
      if (s.seen >= oldest) break
      this.#byId.delete(id)
    }
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * Whether a request comes from a page of the queen's own origin. Browsers send `Origin` on
 * every cross-origin request and on same-origin ones that change state, and a page cannot
 * forge it: a form or fetch from another site carries that site's origin.
 */
export function sameOrigin(c: Context, expected?: string): boolean {
  const origin = c.req.header('origin')
  return origin !== undefined && origin === (expected ?? new URL(c.req.url).origin)
}

export type SessionCredential =
  /** No session cookie: the request may still carry a bearer token. */
  | { kind: 'none' }
  | { kind: 'token'; token: string }
  /** A cookie for no live session (signed out, idle past 12 h, the queen restarted). */
  | { kind: 'expired' }
  /** A state-changing request with the cookie but without the queen's own Origin: cross-site request forgery. */
  | { kind: 'cross-origin'; origin: string | undefined }

/**
 * Turns a request's session cookie into the API token it stands for, so the API's own auth
 * (roles and all) judges a console request as it judges a bearer token. A request that
 * changes state must also come from the queen's own origin.
 */
export function sessionCredential(c: Context, sessions: SessionStore): SessionCredential {
  const id = getCookie(c, SESSION_COOKIE)
  if (id === undefined || id === '') return { kind: 'none' }
  if (!SAFE_METHODS.has(c.req.method) && !sameOrigin(c, sessions.origin)) return { kind: 'cross-origin', origin: c.req.header('origin') }
  const token = sessions.token(id)
  return token === undefined ? { kind: 'expired' } : { kind: 'token', token }
}
