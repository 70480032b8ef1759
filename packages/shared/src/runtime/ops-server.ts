import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer, get, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ApiaryError, errorMessage } from '../errors.ts'
import { readSecretFile } from './config.ts'
import type { Logger } from './log.ts'
import type { DaemonMetrics } from './metrics.ts'

/** Where a hive's or worker's `/metrics`, `/healthz` and `/readyz` are served, and who may scrape. */
export interface OpsEndpoint {
  host: string
  port: number
  /** `/metrics` needs `Authorization: Bearer <it>` (read from `--metrics-token-file`); without it, open (loopback only). */
  token?: string
}

/** `--metrics-host`, `--metrics-port` and `--metrics-token-file` as given. */
export interface OpsListen {
  host: string
  port: number
  tokenFile: string | undefined
}

export interface OpsServerOptions extends OpsEndpoint {
  metrics: Pick<DaemonMetrics<never>, 'render'>
  /** Why the daemon is not ready (logged when it changes, never served), or null when it is. */
  notReady: () => string | null
  log: Logger
}

export interface OpsServer {
  /** `http://host:port` */
  url: string
  port: number
  close(): Promise<void>
}

/** The longest request line and headers taken; a scrape needs a few hundred bytes. */
const MAX_HEADER_BYTES = 8 * 1024
const MAX_URL = 1024

/** Whether `host` is a loopback address, where nobody but this machine's users can reach a port. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h)
}

/** Refuses a metrics address others can reach without a token to scrape it with: names the flags. */
export function checkOpsEndpoint(host: string, tokenFile: string | undefined): void {
  if (tokenFile === undefined && !isLoopback(host)) {
    throw new ApiaryError(
      'invalid_input',
      `--metrics-host ${host} is not a loopback address: give --metrics-token-file (a bearer token, mode 0600) so that /metrics is not open to whoever reaches the port`,
      '--metrics-token-file',
    )
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest()

/**
 * Serves a daemon's operator endpoints on their own port: `/healthz` (the process answers),
 * `/readyz` (200 when `notReady()` is null, else 503; neither says why: the reason goes to the
 * log when it changes) and `/metrics` (Prometheus text; with a token, only to
 * `Authorization: Bearer <token>`, else 401). Only GET and HEAD, no request body, headers at
 * most 8 KiB, a URL at most 1 KiB; anything else is refused.
 *
 * @example const ops = await startOpsServer({ host: '127.0.0.1', port: 9464, metrics, notReady: () => null, log })
 */
export async function startOpsServer(o: OpsServerOptions): Promise<OpsServer> {
  const want = o.token === undefined ? undefined : digest(o.token)
  let lastWhy: string | null | undefined
  const readiness = () => {
    const why = o.notReady()
    if (why !== lastWhy) {
      if (why !== null) o.log.info({ why }, 'not ready')
      else if (lastWhy !== undefined) o.log.info('ready')
      lastWhy = why
    }
    return why
  }
  const send = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...headers })
    res.end(res.req.method === 'HEAD' ? undefined : body)
  }
  const authorized = (req: IncomingMessage) => {
    if (want === undefined) return true
    const m = /^Bearer (\S{1,4096})$/.exec(req.headers.authorization ?? '')
    return m !== null && timingSafeEqual(digest(m[1]!), want)
  }
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/'
    if (url.length > MAX_URL) return send(res, 414, 'URI too long\n', { connection: 'close' })
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed\n', { allow: 'GET, HEAD', connection: 'close' })
    // A GET has no body: one announced is never read.
    if ((req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') || req.headers['transfer-encoding'] !== undefined) {
      return send(res, 413, 'no request body is taken\n', { connection: 'close' })
    }
    const path = url.split('?')[0]
    switch (path) {
      case '/healthz':
        return send(res, 200, 'ok\n')
      case '/readyz':
        return readiness() === null ? send(res, 200, 'ready\n') : send(res, 503, 'not ready\n')
      case '/metrics': {
        if (!authorized(req)) return send(res, 401, 'unauthorized\n', { 'www-authenticate': 'Bearer realm="metrics"' })
        const { body, contentType } = await o.metrics.render()
        return send(res, 200, body, { 'content-type': contentType })
      }
      default:
        return send(res, 404, 'not found\n')
    }
  }
  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 5_000 }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      o.log.error({ err, path: req.url }, 'metrics request failed')
      if (!res.headersSent) send(res, 500, 'internal error\n')
      else res.destroy()
    })
  })
  server.maxRequestsPerSocket = 100
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new ApiaryError('invalid_input', `cannot serve metrics on ${o.host}:${o.port}: ${errorMessage(err)}`, '--metrics-port', { cause: err })))
    server.listen(o.port, o.host, () => resolve())
  })
  server.on('error', (err) => o.log.error({ err }, 'metrics server error'))
  const port = (server.address() as AddressInfo).port
  const url = `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`
  o.log.info({ url, auth: want !== undefined }, 'serving /metrics, /healthz and /readyz')
  return {
    url,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/**
 * A container's health probe: asks this machine's daemon's `/readyz` on its metrics port
 * (an address bound to all interfaces is asked on loopback) and resolves true for a 200 within
 * `timeoutMs`, false otherwise, with why on `say`.
 * @example process.exitCode = (await probeReady({ host: '0.0.0.0', port: 9464 })) ? 0 : 1
 */
export function probeReady(at: { host: string; port: number }, say: (line: string) => void = () => {}, timeoutMs = 2000): Promise<boolean> {
  const host = at.host === '0.0.0.0' ? '127.0.0.1' : at.host === '::' || at.host === '[::]' ? '::1' : at.host.replace(/^\[|\]$/g, '')
  return new Promise((resolve) => {
    const req = get({ host, port: at.port, path: '/readyz', timeout: timeoutMs }, (res) => {
      res.resume()
      if (res.statusCode !== 200) say(`/readyz on ${host}:${at.port} answered ${res.statusCode}`)
      resolve(res.statusCode === 200)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on('error', (err) => {
      say(`/readyz on ${host}:${at.port}: ${err.message}`)
      resolve(false)
    })
  })
}

/**
 * For `main.ts`: serves the operator endpoints where the flags say (reading the token file,
 * mode 0600), or nothing without `--metrics-port`.
 * @example const ops = await serveOps(c.ops.metrics, { metrics, notReady, log })
 */
export async function serveOps(at: Readonly<OpsListen> | undefined, o: Omit<OpsServerOptions, keyof OpsEndpoint>): Promise<OpsServer | undefined> {
  if (!at) return undefined
  const token = at.tokenFile === undefined ? undefined : await readSecretFile(at.tokenFile, '--metrics-token-file')
  return startOpsServer({ host: at.host, port: at.port, ...(token !== undefined ? { token } : {}), ...o })
}

/** `--health` of a hive or worker: its /readyz on `--metrics-port`, saying why not on stderr. */
export async function healthFromFlags(v: { 'metrics-port': number | undefined; 'metrics-host': string }, program: string): Promise<boolean> {
  const say = (line: string) => void process.stderr.write(`${program} --health: ${line}\n`)
  if (v['metrics-port'] === undefined) {
    say('no --metrics-port (APIARY_METRICS_PORT): the health endpoints are off')
    return false
  }
  return probeReady({ host: v['metrics-host'], port: v['metrics-port'] }, say)
}
