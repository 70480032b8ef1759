import type { Context, MiddlewareHandler } from 'hono'
import type { Logger } from '@apiary/shared'
import { rateLimitedWarning } from '@apiary/shared/runtime'
import type { Auditor } from '../access/auditor.ts'
import type { Authenticated, UserRegistry } from '../access/users.ts'
import { errorBody } from './errors.ts'
import { sessionCredential, type SessionStore } from './session.ts'

/** What every authenticated route sees: the user, the signal their token's validity holds, and where the request came from. */
export interface AppEnv {
  Variables: { auth: Authenticated; source: string }
}

/**
 * The request's source address: the peer of its connection (never a header a client can set).
 * `unknown` when there is no socket (a test driving the app with `app.request()`).
 */
export function sourceOf(c: Context): string {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined
  return env?.incoming?.socket?.remoteAddress ?? 'unknown'
}

/**
 * Bearer-token auth against the users. Tokens are looked up by their SHA-256 digest, so no
 * token is compared (or kept) in clear. A refusal is logged without the token, at most one
 * line per interval however many come, and counted into the audit log per source address.
 */
export function bearerAuth(users: UserRegistry, auditor: Auditor, log: Logger, sessions?: SessionStore): MiddlewareHandler<AppEnv> {
  const refused = rateLimitedWarning(log, 'unauthorized request')
  return async (c, next) => {
    const source = sourceOf(c)
    const header = c.req.header('authorization') ?? ''
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header)
    // The web console's session cookie stands for a user's token; with it, a request that
    // changes state must come from the queen's own origin (a cross-site forgery otherwise).
    const session = m || !sessions ? undefined : sessionCredential(c, sessions)
    if (session?.kind === 'cross-origin') {
      refused.note({ method: c.req.method, path: c.req.path, source, reason: 'cross-origin session request' })
      return c.json(errorBody('forbidden', "the request's Origin is not this queen's: refused as a cross-site request", 'Origin'), 403)
    }
    const token = m ? m[1]! : session?.kind === 'token' ? session.token : undefined
    const auth = token === undefined ? undefined : users.authenticate(token)
    if (!auth) {
      const reason = m ? 'unknown token' : 'no bearer token'
      refused.note({ method: c.req.method, path: c.req.path, source, reason })
      auditor.failed(source, reason)
      return c.json(errorBody('unauthorized', m ? 'the token is not valid' : 'missing bearer token (Authorization: Bearer <token>)'), 401)
    }
    auditor.seen(auth.user.name, source)
    c.set('auth', auth)
    c.set('source', source)
    await next()
  }
}
