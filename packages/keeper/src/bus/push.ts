import { z } from 'zod'
import { claimsUpdateSubject, SYSTEM_INBOX_PREFIX } from './claims.ts'
import type { ServerSettings } from './server-config.ts'

/** Where and how keeper reaches nats-server as its system user. */
export interface PushTarget {
  /** `nats://HOST:PORT` (or `tls://`). */
  server: string
  /** `sys.creds`: keeper's user of the system account. */
  creds: Uint8Array
  /** TLS: the CA of the server's certificate (else the system's CAs) and, for mTLS, keeper's client certificate. */
  tls?: { ca?: string; cert?: string; key?: string }
  /**
   * The server names of its cluster, every one of which must take the JWT: the update, sent to
   * one server, reaches all of them through the system account, and each answers. Empty for a
   * server alone (its one answer counts).
   */
  cluster: string[]
}

/**
 * What came of a push. `failed` names the step: `connect` (no connection as the system user:
 * the server is not there, refuses TLS or the credential), `request` (connected, no answer) or
 * `update` (the server answered, and did not take the JWT).
 */
export type PushOutcome = { ok: true; server: string; message: string } | { ok: false; server: string; failed: 'connect' | 'request' | 'update'; reason: string }

/** What a running nats-server needs to take the account's new JWT. */
export interface AccountUpdate {
  accountPublicKey: string
  accountJwt: string
  /** The servers `server.json` records: the first is pushed to unless the flags say otherwise. */
  servers: readonly ServerSettings[]
  /** keeper's system user; `issued` when it was made now, the directory having none. */
  system: { path: string; creds: Uint8Array; issued: boolean }
}

/** Sends an `AccountUpdate` to nats-server; the store calls it holding the directory's lock. */
export type Pusher = (u: AccountUpdate) => Promise<PushOutcome>

/** The flags of a push: where nats-server is, and the TLS files keeper connects with (absolute paths). */
export interface PushFlags {
  server?: string
  ca?: string
  cert?: string
  key?: string
}

/**
 * The address keeper connects to for a server listening on `host`: a server on every
 * interface is reached on the loopback one (keeper runs beside it), an IPv6 address in brackets.
 */
export function connectHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1'
  if (host === '::' || host === '[::]') return '[::1]'
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
}

function addressOf(s: ServerSettings): string {
  return `nats://${connectHost(s.host)}:${s.port}`
}

/**
 * Where and how to push: `flags.server`, else the address `server.json` records (its first
 * server's); over TLS when that server's settings record TLS (verifying the server with
 * `--tls-ca`, else its recorded CA, else the system's CAs), or when TLS flags or a `tls://`
 * address are given. An mTLS server asks every client for a certificate, keeper's
 * system user too: without `--tls-cert` that is known to fail, so it is said before connecting.
 * For a server of a cluster, every server of it must answer.
 */
export function targetFor(servers: readonly ServerSettings[], flags: PushFlags, creds: Uint8Array): { target: PushTarget } | { refused: PushOutcome } {
  const first = servers[0]
  if (first === undefined) throw new Error('server.json records no server')
  const settings = servers.find((s) => flags.server !== undefined && addressOf(s) === flags.server.replace(/^tls:/, 'nats:')) ?? first
  const server = flags.server ?? addressOf(settings)
  const recorded = settings.tls
  if (recorded?.ca !== undefined && flags.cert === undefined) {
    const reason = `nats-server asks every client for a certificate of ${recorded.ca} (mTLS, as server.json records): give keeper's with --tls-cert and --tls-key`
    return { refused: { ok: false, server, failed: 'connect', reason } }
  }
  const tlsWanted = recorded !== undefined || flags.ca !== undefined || flags.cert !== undefined || server.startsWith('tls://')
  const ca = flags.ca ?? recorded?.ca
  const tls = tlsWanted ? { ...(ca !== undefined ? { ca } : {}), ...(flags.cert !== undefined && flags.key !== undefined ? { cert: flags.cert, key: flags.key } : {}) } : undefined
  const cluster = settings.cluster ? servers.flatMap((s) => (s.cluster?.name === settings.cluster?.name && s.name !== undefined ? [s.name] : [])) : []
  return { target: { server, creds, ...(tls ? { tls } : {}), cluster } }
}

/** A `Pusher` for these flags: `targetFor`, then `pushAccountClaims`. */
export function pusher(flags: PushFlags, opts: { signal?: AbortSignal } = {}): Pusher {
  return async (u) => {
    const t = targetFor(u.servers, flags, u.system.creds)
    if ('refused' in t) return t.refused
    return pushAccountClaims(t.target, u.accountPublicKey, u.accountJwt, opts)
  }
}

/** How long a connection and then the answer may take: a local server answers in milliseconds. */
const CONNECT_TIMEOUT_MS = 5000
const REPLY_TIMEOUT_MS = 5000

/** nats-server's answer to a claims update (2.9: `respondToUpdate`). */
const UpdateReply = z.object({
  server: z.object({ name: z.string() }).partial().optional(),
  data: z.object({ code: z.number(), message: z.string() }).optional(),
  error: z.object({ code: z.number(), description: z.string() }).optional(),
})

/** What nats-server says when it has not loaded the account, which leaves its resolver's JWT in place. */
const SKIPPED = 'jwt update skipped'

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message || err.name : String(err)
}

/**
 * Reads nats-server's answer. It applies a JWT only to an account it has loaded (one a client
 * connected to since it started or reloaded); for another it says "skipped" and keeps the JWT
 * its config preloaded, so a revoked user could still connect: that is a failure too.
 */
export function readUpdateReply(server: string, body: string): PushOutcome {
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch {
    return { ok: false, server, failed: 'update', reason: `nats-server answered with something other than JSON: ${body.slice(0, 200)}` }
  }
  const r = UpdateReply.safeParse(json)
  if (!r.success) return { ok: false, server, failed: 'update', reason: `nats-server answered with an unknown status: ${body.slice(0, 200)}` }
  const { data, error } = r.data
  if (error) return { ok: false, server, failed: 'update', reason: `nats-server refused the account JWT: ${error.description} (code ${error.code})` }
  if (!data) return { ok: false, server, failed: 'update', reason: `nats-server answered with an unknown status: ${body.slice(0, 200)}` }
  if (data.message === SKIPPED) {
    return {
      ok: false,
      server,
      failed: 'update',
      reason:
        'nats-server has not loaded the apiary account (no client of it connected since it started or reloaded), so it keeps the JWT its config preloaded and would still admit the revoked key; ' +
        'no connection uses the account, so a reload now disturbs nobody',
    }
  }
  return { ok: true, server, message: data.message }
}

/** The name of the server that sent an answer, if it says. */
function answeredBy(body: string): string | undefined {
  try {
    return UpdateReply.safeParse(JSON.parse(body)).data?.server?.name
  } catch {
    return undefined
  }
}

/**
 * Reads the answers of a cluster's servers: the push counts only when every one of `cluster`
 * took the JWT. A server that skipped it (no client of the account since it started) or did
 * not answer (down, or cut off) would still admit a revoked key; one that is down reads the
 * config when it starts, if it is the config keeper rewrote.
 */
export function readClusterReplies(server: string, cluster: readonly string[], bodies: readonly string[]): PushOutcome {
  const byName = new Map<string, PushOutcome>()
  for (const body of bodies) {
    const name = answeredBy(body)
    if (name !== undefined && cluster.includes(name)) byName.set(name, readUpdateReply(server, body))
  }
  // Servers that failed alike are named together, their reason said once.
  const failures = new Map<string, string[]>()
  for (const name of cluster) {
    const r = byName.get(name)
    const why = r === undefined ? 'did not answer (a server that is down reads its config when it starts)' : r.ok ? undefined : r.reason
    if (why !== undefined) failures.set(why, [...(failures.get(why) ?? []), name])
  }
  if (failures.size > 0) {
    const said = [...failures].map(([why, names]) => `${names.join(', ')}${why.startsWith('did not') ? ' ' : ': '}${why}`)
    return { ok: false, server, failed: 'update', reason: `not every server of the cluster took it: ${said.join('; ')}` }
  }
  return { ok: true, server, message: `jwt updated on ${cluster.join(', ')}` }
}

/**
 * Hands the account's new JWT to a running nats-server (2.9) as the system user: the server
 * applies it at once, closing only the connections of newly revoked users. (A reload, the
 * alternative, closes every connection that authenticated with a JWT on 2.9.10.)
 *
 * The NATS client is loaded here, not at start: only revoke and push talk to nats-server.
 */
export async function pushAccountClaims(target: PushTarget, accountPublicKey: string, accountJwt: string, opts: { signal?: AbortSignal } = {}): Promise<PushOutcome> {
  const { connect, credsAuthenticator } = await import('@nats-io/transport-node')
  const { server, tls } = target
  let nc: Awaited<ReturnType<typeof connect>>
  try {
    nc = await connect({
      servers: server,
      name: 'keeper bus',
      authenticator: credsAuthenticator(target.creds),
      inboxPrefix: SYSTEM_INBOX_PREFIX,
      reconnect: false,
      timeout: CONNECT_TIMEOUT_MS,
      ...(tls ? { tls: { ...(tls.ca ? { caFile: tls.ca } : {}), ...(tls.cert && tls.key ? { certFile: tls.cert, keyFile: tls.key } : {}) } } : {}),
    })
  } catch (err) {
    return { ok: false, server, failed: 'connect', reason: `could not connect as keeper's system user: ${messageOf(err)}` }
  }
  const abort = () => void nc.close()
  opts.signal?.addEventListener('abort', abort, { once: true })
  try {
    if (target.cluster.length > 1) {
      // Every server answers the one request; those that have not within the time are named.
      const replies = await nc.requestMany(claimsUpdateSubject(accountPublicKey), accountJwt, { strategy: 'count', maxMessages: target.cluster.length, maxWait: REPLY_TIMEOUT_MS })
      const bodies: string[] = []
      for await (const m of replies) bodies.push(m.string())
      return readClusterReplies(server, target.cluster, bodies)
    }
    const reply = await nc.request(claimsUpdateSubject(accountPublicKey), accountJwt, { timeout: REPLY_TIMEOUT_MS })
    return readUpdateReply(server, reply.string())
  } catch (err) {
    return { ok: false, server, failed: 'request', reason: `no answer to the claims update: ${messageOf(err)}` }
  } finally {
    opts.signal?.removeEventListener('abort', abort)
    await nc.close().catch(() => undefined)
  }
}
