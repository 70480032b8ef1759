import { createHash, timingSafeEqual } from 'node:crypto'
import type { MiddlewareHandler } from 'hono'
import type { Logger } from '@apiary/shared'
import { errorBody } from './errors.ts'

const digest = (s: string) => createHash('sha256').update(s).digest()

/**
 * Bearer-token auth. Tokens are compared as SHA-256 digests in constant time, so neither
 * content nor length leaks through timing. A refusal is logged without the token.
 */
export function bearerAuth(token: string, log: Logger): MiddlewareHandler {
  const expected = digest(token)
  return async (c, next) => {
    const header = c.req.header('authorization') ?? ''
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header)
    const ok = m !== null && timingSafeEqual(digest(m[1]!), expected)
    if (!ok) {
      log.warn({ method: c.req.method, path: c.req.path, reason: m ? 'wrong token' : 'no bearer token' }, 'unauthorized request')
      return c.json(errorBody('unauthorized', m ? 'the token is not valid' : 'missing bearer token (Authorization: Bearer <token>)'), 401)
    }
    await next()
  }
}
