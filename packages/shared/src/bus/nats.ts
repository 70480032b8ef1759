import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import {
  type Authenticator,
  connect,
  createInbox,
  credsAuthenticator,
  type Msg,
  type NatsConnection,
  nkeyAuthenticator,
  nkeys,
  type Subscription,
  type TlsOptions,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
} from '@nats-io/transport-node'
import { ApiaryError, errorMessage } from '../errors.ts'
import { checkNatsConnectFlags, type NatsConnectFlags } from '../runtime/cli.ts'
import { readSecretFile } from '../runtime/config.ts'
import type { Logger } from '../runtime/log.ts'
import { subjects } from '../subjects.ts'
import type { Identity } from '../trust/identity.ts'
import { type Bus, type BusMessage, MAX_BODY_BYTES, MAX_REPLY_BYTES, readBytes, runHandler } from './bus.ts'
import { createNatsDurable } from './nats-durable.ts'

export interface NatsBusOptions extends NatsConnectFlags {
  /** One server or several, comma-separated (a cluster); `tls://` turns TLS on. Never a credential. */
  url: string
  /** Connection name shown by the server (`apiary-queen`, `apiary-worker:web-1`). */
  name: string
  log: Logger
  /** How long the first connect may take before it fails. */
  connectTimeoutMs?: number
  /**
   * Who this connection is. Replies to its requests then come only to its own inbox prefix
   * (`subjects.inboxPrefix`), the one nats-server lets its credential receive.
   */
  identity?: Identity
  /** Told when the connection is lost and when it comes back (readiness, `busLink`). */
  onStatus?: (status: 'disconnect' | 'reconnect') => void
}

const enc = new TextEncoder()

const NO_AUTH =
  'the bus has no authentication: give --nats-creds (see `keeper bus issue`), --nats-user-file or --nats-token-file, or --insecure-bus to run without'
const INSECURE = 'running on an unauthenticated bus: anyone who reaches NATS can run commands on every node'

/**
 * The bus over a NATS connection, authenticated with a credential read from a 0600 file and
 * over TLS when asked. Reconnects forever once connected; the first connect fails with
 * `unreachable` so a process started against a dead server says so, and with `invalid_input`
 * when the server refuses the credential.
 *
 * @example
 * const bus = await createNatsBus({ url: 'tls://nats.example:4222', name: 'apiary-hive:h1', log,
 *   credsFile: '/etc/apiary/hive.creds', identity: { role: 'hive', id: 'h1', region: 'eu' } })
 */
export async function createNatsBus(opts: NatsBusOptions): Promise<Bus> {
  const { log } = opts
  const servers = serverList(opts.url)
  checkNatsConnectFlags(opts)
  const credential = await readCredential(opts)
  if (!credential) {
    if (!opts.insecure) throw new ApiaryError('invalid_input', NO_AUTH, '--nats-creds')
    log.warn({ server: opts.url }, INSECURE)
  }
  const tls = await tlsOptions(opts, servers)
  const inboxPrefix = opts.identity ? subjects.inboxPrefix(opts.identity.role, opts.identity.id, opts.identity.region) : undefined
  let nc: NatsConnection
  try {
    nc = await connect({
      servers,
      name: opts.name,
      timeout: opts.connectTimeoutMs ?? 5000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      pingInterval: 10_000,
      // With async traces on, nats.js captures a stack trace for every request.
      noAsyncTraces: true,
      ...(credential ? { authenticator: credential.authenticator } : {}),
      ...(tls ? { tls } : {}),
      ...(inboxPrefix ? { inboxPrefix } : {}),
    })
  } catch (err) {
    throw connectError(err, opts.url, credential?.source, tls)
  }
  log.info({ server: opts.url, auth: credential?.kind ?? 'none', tls: tls !== undefined, ...(inboxPrefix ? { inbox: inboxPrefix } : {}) }, 'connected to NATS')
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') {
        log.warn({ nats: s.type, server: s.server }, `NATS ${s.type}`)
        opts.onStatus?.(s.type)
      }
      else if (s.type === 'error') log.error({ nats: s.type, err: s.error }, 'NATS error')
    }
  })().catch(() => undefined)

  const subs = new Set<Subscription>()

  // Requests share one inbox subscription, replies matched by token. Measured against nats.js's
  // own request() with async traces off (bench/bus-request, 2 cores): as fast one at a time,
  // 1.3× the requests per second at 64 in flight and 1.9× at 1,024 (a hive's window), at about
  // half the client CPU per request; nats.js allocates a timer and a deferred per request.
  // With an identity, the prefix nats-server lets this credential receive replies on.
  const inbox = createInbox(inboxPrefix)
  const inflight = new Map<string, { reply: (m: Msg) => void; fail: (err: ApiaryError) => void }>()
  nc.subscribe(`${inbox}.*`, {
    callback: (err, m) => {
      if (err) {
        // A permissions violation: the credential was issued for another identity's inbox.
        log.error({ err, inbox }, 'NATS refused the reply inbox: no request will get an answer (was the credential issued for this identity?)')
        return
      }
      inflight.get(m.subject.slice(inbox.length + 1))?.reply(m)
    },
  })
  // Set when close() starts: requests the drain cuts off reject with `closed` even though the
  // connection only reports isClosed() once the drain has finished.
  let closing = false
  // nats.js gives up reconnecting when the server refuses the credential twice: say so, since
  // nothing on this connection will work again.
  void nc.closed().then((err) => {
    if (err && !closing) log.error({ err }, `the NATS connection closed for good: ${errorMessage(err)}`)
  })

  function toMessage(m: Msg, maxBytes: number): BusMessage | undefined {
    // The size is known before a byte is decoded: an oversized body costs nothing to drop.
    const body = readBytes(m.data, m.subject, maxBytes, log)
    if (!body) return undefined
    return {
      subject: m.subject,
      data: body.data,
      expectsReply: Boolean(m.reply),
      respond(reply) {
        // Replies go to a requester's inbox only: a request cannot make this connection publish elsewhere.
        if (m.reply?.startsWith('_INBOX.')) m.respond(enc.encode(JSON.stringify(reply)))
      },
    }
  }

  // Streams and leases share this connection: its inbox prefix, so its permissions, apply to them too.
  const durable = createNatsDurable(nc, log)

  return {
    kind: 'nats',
    durable,
    publish(subject, data) {
      try {
        nc.publish(subject, enc.encode(JSON.stringify(data)))
      } catch (err) {
        throw new ApiaryError('closed', `cannot publish to ${subject}: ${errorMessage(err)}`, undefined, { cause: err })
      }
    },
    subscribe(subject, handler, sopts) {
      const maxBytes = sopts?.maxBytes ?? MAX_BODY_BYTES
      let sub: Subscription
      try {
        sub = nc.subscribe(subject, {
          ...(sopts?.queue ? { queue: sopts.queue } : {}),
          callback: (err, m) => {
            if (err) {
              log.error({ err, subject }, 'subscription failed')
              return
            }
            const msg = toMessage(m, maxBytes)
            if (msg) runHandler(handler, msg, log)
          },
        })
      } catch (err) {
        throw new ApiaryError('closed', `cannot subscribe to ${subject}: ${errorMessage(err)}`, undefined, { cause: err })
      }
      subs.add(sub)
      return {
        unsubscribe() {
          subs.delete(sub)
          sub.unsubscribe()
        },
      }
    },
    request(subject, data, ropts) {
      if (ropts.signal?.aborted) return Promise.reject(new ApiaryError('timeout', `request to ${subject} was aborted`))
      if (closing || nc.isClosed()) return Promise.reject(new ApiaryError('closed', `the bus is closed`))
      // Unguessable: whoever sees one request's reply subject cannot answer another in its place.
      const token = randomBytes(12).toString('base64url')
      return new Promise<unknown>((resolve, reject) => {
        const settle = (fn: () => void) => {
          if (!inflight.delete(token)) return
          clearTimeout(timer)
          ropts.signal?.removeEventListener('abort', onAbort)
          fn()
        }
        const onAbort = () => settle(() => reject(new ApiaryError('timeout', `request to ${subject} was aborted`, undefined, { cause: ropts.signal?.reason })))
        const timer = setTimeout(() => settle(() => reject(new ApiaryError('timeout', `no reply from ${subject} within ${ropts.timeoutMs} ms`))), ropts.timeoutMs)
        ropts.signal?.addEventListener('abort', onAbort, { once: true })
        inflight.set(token, {
          reply: (m) =>
            settle(() => {
              // The server answers 503 at once when nobody subscribes to the subject.
              if (m.headers?.code === 503) return reject(new ApiaryError('no_responders', `no responders on ${subject}`))
              const body = readBytes(m.data, subject, MAX_REPLY_BYTES, log)
              if (body) resolve(body.data)
              else reject(new ApiaryError('invalid_input', `reply from ${subject} is not JSON, too large or nested too deep`))
            }),
          fail: (err) => settle(() => reject(err)),
        })
        try {
          nc.publish(subject, enc.encode(JSON.stringify(data)), { reply: `${inbox}.${token}` })
        } catch (err) {
          settle(() => reject(new ApiaryError('closed', `cannot send a request to ${subject}: ${errorMessage(err)}`, undefined, { cause: err })))
        }
      })
    },
    flush() {
      return nc.flush()
    },
    async close() {
      closing = true
      durable.close()
      for (const p of [...inflight.values()]) p.fail(new ApiaryError('closed', 'the bus closed before the reply came'))
      if (nc.isClosed()) return
      try {
        await nc.drain()
      } catch {
        await nc.close()
      }
    },
  }
}

/** The servers of `--nats`, refusing a credential in any of them without repeating it. */
function serverList(url: string): string[] {
  const servers = url
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean)
  if (servers.length === 0) throw new ApiaryError('invalid_input', '--nats: no NATS server given', '--nats')
  for (const [i, u] of servers.entries()) {
    // An @ anywhere is user:pass@ or token@ (a password may hold a / too), which nats.js
    // silently drops (and a numeric password would be read as the port); a query such as
    // ?user=…&pass=… would be ignored. Neither is repeated in the error.
    const where = servers.length > 1 ? `server ${i + 1} of --nats` : '--nats'
    if (/[?#]/.test(u)) throw new ApiaryError('invalid_input', `${where} must be scheme://host:port, without a query or fragment (credentials go in a file: --nats-creds / --nats-user-file / --nats-token-file)`, '--nats')
    if (u.includes('@')) {
      throw new ApiaryError(
        'invalid_input',
        `${where} holds a credential in its URL (it would show in process lists and logs): put credentials in a file: --nats-creds / --nats-user-file / --nats-token-file`,
        '--nats',
      )
    }
  }
  return servers
}

interface Credential {
  authenticator: Authenticator
  kind: 'creds' | 'nkey' | 'token' | 'user'
  /** The flag and file it came from, for errors: `--nats-creds /etc/apiary/hive.creds`. */
  source: string
}

async function readCredential(o: NatsConnectFlags): Promise<Credential | undefined> {
  if (o.credsFile !== undefined) return credsOrSeed(await readSecretFile(o.credsFile, '--nats-creds'), `--nats-creds ${o.credsFile}`)
  if (o.tokenFile !== undefined) {
    const token = await readSecretFile(o.tokenFile, '--nats-token-file')
    if (/\s/.test(token)) throw new ApiaryError('invalid_input', `--nats-token-file ${o.tokenFile} must hold one token on one line`, '--nats-token-file')
    return { authenticator: tokenAuthenticator(token), kind: 'token', source: `--nats-token-file ${o.tokenFile}` }
  }
  if (o.userFile !== undefined) {
    const lines = (await readSecretFile(o.userFile, '--nats-user-file')).split(/\r?\n/)
    const [user, pass] = [lines[0]?.trim() ?? '', lines[1] ?? '']
    if (lines.length !== 2 || user === '' || pass === '') {
      throw new ApiaryError('invalid_input', `--nats-user-file ${o.userFile} must hold two lines: the user, then the password`, '--nats-user-file')
    }
    return { authenticator: usernamePasswordAuthenticator(user, pass), kind: 'user', source: `--nats-user-file ${o.userFile}` }
  }
  return undefined
}

/**
 * A `.creds` file (the armoured blocks `nsc` and `keeper bus issue` write: the user JWT, then
 * its nkey seed) or a bare nkey seed (one line, `SU…`), told apart by content. Checked here,
 * so that a bad file is named at start and not as a refusal from the server.
 */
function credsOrSeed(text: string, source: string): Credential {
  if (/-{3,}BEGIN NATS USER JWT-{3,}/.test(text)) {
    // The file was trimmed; nats.js's parser wants the newline after the last block.
    const authenticator = credsAuthenticator(enc.encode(`${text}\n`))
    try {
      authenticator('probe')
    } catch {
      throw new ApiaryError('invalid_input', `${source} is not a valid .creds file: it needs the user JWT block and the user nkey seed block`, '--nats-creds')
    }
    return { authenticator, kind: 'creds', source }
  }
  if (/^S[A-Z2-7]{57}$/.test(text)) {
    const seed = enc.encode(text)
    let publicKey: string
    try {
      publicKey = nkeys.fromSeed(seed).getPublicKey()
    } catch {
      throw new ApiaryError('invalid_input', `${source} is not a valid nkey seed (its checksum does not match)`, '--nats-creds')
    }
    if (!publicKey.startsWith('U')) throw new ApiaryError('invalid_input', `${source} holds an nkey seed that is not a user's (it starts S${text[1]}, a user's SU)`, '--nats-creds')
    return { authenticator: nkeyAuthenticator(seed), kind: 'nkey', source }
  }
  throw new ApiaryError(
    'invalid_input',
    `${source} is neither a NATS .creds file (a user JWT and its nkey seed, from \`keeper bus issue\` or nsc) nor a user nkey seed (one line, SU…)`,
    '--nats-creds',
  )
}

/** nats.js's `tls` option: on with a `tls://` server or any TLS file; the key read as a secret. */
async function tlsOptions(o: NatsConnectFlags, servers: string[]): Promise<TlsOptions | undefined> {
  const t = o.tls ?? {}
  const wanted = servers.some((s) => /^tls:\/\//i.test(s)) || t.caFile !== undefined || t.certFile !== undefined
  if (!wanted) return undefined
  const tls: TlsOptions = {}
  if (t.caFile !== undefined) tls.ca = await readPem(t.caFile, '--nats-ca')
  if (t.certFile !== undefined && t.keyFile !== undefined) {
    tls.cert = await readPem(t.certFile, '--nats-cert')
    tls.key = `${await readSecretFile(t.keyFile, '--nats-key')}\n`
  }
  return tls
}

async function readPem(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new ApiaryError(code === 'ENOENT' ? 'not_found' : 'invalid_input', `${flag} file ${path} ${code === 'ENOENT' ? 'does not exist' : `cannot be read: ${code ?? 'error'}`}`, flag, {
      cause: err,
    })
  }
}

/** The first connect's failure in words: refused credential, TLS trouble, or no server. */
function connectError(err: unknown, url: string, source: string | undefined, tls: TlsOptions | undefined): ApiaryError {
  const name = (err as { name?: unknown } | null)?.name
  const why = errorMessage(err)
  if (name === 'AuthorizationError' || name === 'UserAuthenticationExpiredError') {
    const what = source
      ? `NATS at ${url} refused authentication with ${source} (${why})`
      : `NATS at ${url} refused the connection: it requires authentication (${why}); give --nats-creds, --nats-user-file or --nats-token-file`
    return new ApiaryError('invalid_input', what, source?.split(' ')[0] ?? '--nats-creds', { cause: err })
  }
  let hint = ''
  if (/certificate|self[- ]signed/i.test(why)) {
    // Without --nats-ca nats.js checks the server (which may ask for TLS itself) against the system CAs.
    hint = tls?.ca === undefined ? ' (no system CA vouches for the server: give the CA that signed its certificate with --nats-ca)' : ' (is --nats-ca the CA that signed the server’s certificate?)'
  } else if (name === 'TimeoutError' && tls) {
    // nats.js does not report a TLS alert that comes after the handshake (TLS 1.3), as a
    // refused client certificate does: the connect only times out.
    hint =
      tls.cert === undefined
        ? ' (a server that requires a client certificate lets the connect time out: give --nats-cert and --nats-key)'
        : ' (a server that refuses the client certificate lets the connect time out: is --nats-cert signed by a CA the server trusts?)'
  }
  return new ApiaryError('unreachable', `cannot connect to NATS at ${url}: ${why}${hint}`, '--nats', { cause: err })
}
