import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { type Context, Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import { z } from 'zod'
import { ApiaryError, isApiaryError, type Logger, parseOrThrow, SignIn } from '@apiary/shared'
import { sourceOf } from './auth.ts'
import { errorBody, STATUS } from './errors.ts'
import { SESSION_COOKIE, sessionCredential, type SessionStore, sameOrigin } from './session.ts'

export interface UiDeps {
  sessions: SessionStore
  /**
   * Whether `token` is a valid API token (a user's): only then does a sign-in open a session.
   * `source` is the request's peer address, for the audit log's record of the attempt.
   */
  verify: (token: string, source: string) => boolean
  log: Logger
  /** The console's built assets; by default `@apiary/console`'s `dist/`, wherever it is installed. */
  distDir?: string
}

/**
 * Everything the console may load comes from the queen; no inline script or style (the build
 * emits none), no fonts, no frames: a node's output that slips into the page as markup still
 * cannot run or load anything.
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'none'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
}
/** esbuild's `[name]-[hash]`: the hash is 8 characters of A-Z and 0-9. */
const HASHED = /-[A-Z0-9]{8}\.[a-z]+$/
const ASSET_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9]+)+$/
/** A token is 43 to a few hundred characters; the body holds nothing else. */
const MAX_SIGN_IN_BODY = 8 * 1024

/** `@apiary/console`'s dist directory, found from where this module runs (sources or a bundle). */
export function consoleDistDir(): string | undefined {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('@apiary/console/package.json')), 'dist')
  } catch {
    return undefined
  }
}

const NOT_BUILT = `<!doctype html><html lang="en"><meta charset="utf-8"><title>apiary console not built</title>
<h1>The web console is not built</h1><p>Its assets are missing from this queen's installation. Build them with <code>pnpm build</code> and reload.</p></html>\n`

/**
 * The web console under `/ui`: its page and hashed assets, and sign-in. `POST /ui/session`
 * takes a user's API token in a JSON body and sets a cookie holding a random session id
 * (HttpOnly, SameSite=Strict, Secure over HTTPS); the token stays on the queen
 * (`sessionCredential` turns the cookie back into it for the API). `DELETE /ui/session` signs
 * out; `GET /ui/session` says whether the cookie is signed in.
 */
export function createUi(deps: UiDeps): Hono {
  const ui = new Hono()
  const { sessions, log } = deps
  const distDir = deps.distDir ?? consoleDistDir()
  // Hashed assets never change: read once, kept (a few hundred KiB in all).
  const assets = new Map<string, Buffer>()

  ui.onError((err, c) => {
    if (isApiaryError(err)) return c.json(errorBody(err.code, err.message, err.field), STATUS[err.code])
    log.error({ err, path: c.req.path }, 'console request failed')
    return c.json(errorBody('internal', 'internal error'), 500)
  })
  ui.use('*', async (c, next) => {
    await next()
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.header(k, v)
  })

  const forbidden = (c: Context, message: string) => c.json(errorBody('forbidden', message, 'Origin'), 403)
  const crossOrigin = (c: Context) => {
    log.warn({ method: c.req.method, path: c.req.path, origin: c.req.header('origin') ?? null }, 'console request refused: not from the queen\'s origin')
    return forbidden(c, "the request's Origin is not this queen's: refused as a cross-site request")
  }

  ui.get('/session', (c) => {
    const s = sessionCredential(c, sessions)
    if (s.kind === 'token') return c.json({ signedIn: true })
    return c.json(errorBody('unauthorized', s.kind === 'expired' ? 'the session ended: sign in again' : 'not signed in'), 401)
  })

  ui.post(
    '/session',
    bodyLimit({ maxSize: MAX_SIGN_IN_BODY, onError: (c) => c.json(errorBody('invalid_input', `body is larger than ${MAX_SIGN_IN_BODY} bytes`, 'body'), 400, { connection: 'close' }) }),
    async (c) => {
      // Also for sign-in: another site must not sign a browser in under its own token.
      if (!sameOrigin(c, sessions.origin)) return crossOrigin(c)
      let raw: unknown
      try {
        raw = await c.req.json()
      } catch {
        throw new ApiaryError('invalid_input', 'body is not valid JSON', 'body')
      }
      const { token } = parseOrThrow(SignIn, raw)
      if (!deps.verify(token, sourceOf(c))) {
        log.warn({ path: c.req.path, reason: 'wrong token' }, 'console sign-in refused')
        return c.json(errorBody('unauthorized', 'the token is not valid', 'token'), 401)
      }
      const id = sessions.create(token)
      setCookie(c, SESSION_COOKIE, id, { httpOnly: true, sameSite: 'Strict', path: '/', secure: isHttps(c, sessions.origin) })
      return c.json({ signedIn: true })
    },
  )

  ui.delete('/session', (c) => {
    if (!sameOrigin(c, sessions.origin)) return crossOrigin(c)
    const id = getCookie(c, SESSION_COOKIE)
    if (id !== undefined) sessions.delete(id)
    deleteCookie(c, SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'Strict', secure: isHttps(c, sessions.origin) })
    return c.json({ signedIn: false })
  })

  ui.get('/assets/:name', async (c) => {
    const name = c.req.param('name')
    const ext = name.slice(name.lastIndexOf('.'))
    const type = TYPES[ext]
    if (!ASSET_NAME.test(name) || type === undefined || distDir === undefined) return c.text('not found\n', 404)
    let body = assets.get(name)
    if (!body) {
      try {
        body = await readFile(join(distDir, 'assets', name))
      } catch {
        return c.text('not found\n', 404)
      }
      if (HASHED.test(name)) assets.set(name, body)
    }
    const cache = HASHED.test(name) ? 'public, max-age=31536000, immutable' : 'no-cache'
    return c.body(new Uint8Array(body), 200, { 'content-type': type, 'cache-control': cache })
  })

  const page = async (c: Context) => {
    let html: string | undefined
    // Read on every request (it is small): a rebuild's new asset names show on the next load.
    if (distDir !== undefined) html = await readFile(join(distDir, 'index.html'), 'utf8').catch(() => undefined)
    if (html === undefined) return c.html(NOT_BUILT, 503, { 'cache-control': 'no-store' })
    return c.html(html, 200, { 'cache-control': 'no-cache' })
  }
  ui.get('/', page)
  // `/ui/` too: a sub-app's '/' is the mount path itself, without its trailing slash.
  ui.get('/*', (c) => (c.req.path.endsWith('/') ? page(c) : c.text('not found\n', 404)))
  ui.notFound((c) => c.text('not found\n', 404))
  return ui
}

const isHttps = (c: Context, origin: string | undefined) => new URL(origin ?? c.req.url).protocol === 'https:'
