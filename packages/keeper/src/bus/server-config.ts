import { dirname, join } from 'node:path'
import { ApiaryError } from '@apiary/shared'
import { z } from 'zod'

const HostPort = z.object({ host: z.string().regex(/^[^\s"'\\@/]+$/, 'must be a host name or an address'), port: z.number().int().min(1).max(65535) })
export type HostPort = z.infer<typeof HostPort>

/** A server or cluster name as nats-server takes it (a subject token: no dots, spaces or wildcards). */
export const ServerName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'must be letters, digits, - and _ (at most 64), starting with a letter or digit')

/** Where a server keeps its streams, and how much of the disk it may use. */
const JetStreamSettings = z.object({
  /** nats-server's store_dir (absolute); it keeps its streams in `<storeDir>/jetstream`. */
  storeDir: z.string(),
  /** max_file_store, in bytes. */
  maxStore: z.number().int().positive(),
  /** Writes `sync_interval: always` (nats-server 2.10 and later; 2.9 refuses to start with it). */
  syncAlways: z.boolean(),
})

/** What one nats-server config listens on, its TLS files (absolute paths), its JetStream store and its cluster. */
export const ServerSettings = z.object({
  host: z.string().regex(/^[^\s"'\\]+$/, 'must be a host name or an address'),
  port: z.number().int().min(0).max(65535),
  tls: z.object({ cert: z.string(), key: z.string(), ca: z.string().optional() }).optional(),
  /** Where the config is written (and rewritten by revoke and re-issue). */
  path: z.string(),
  /** server_name: required in a cluster (JetStream's peers know each other by it). */
  name: ServerName.optional(),
  /** Absent in a server.json written before keeper configured JetStream: `withJetStream` fills it in. */
  jetstream: JetStreamSettings.optional(),
  /** The routes of a JetStream cluster: where this server listens for the others, and where they are. */
  cluster: z.object({ name: ServerName, listen: HostPort, routes: z.array(HostPort).min(1) }).optional(),
})
export type ServerSettings = z.infer<typeof ServerSettings>
export type JetStreamSettings = z.infer<typeof JetStreamSettings>

/**
 * `server.json`: the servers whose configs keeper writes, and rewrites on every revoke: one
 * server, or the servers of one cluster. A file written before clusters holds one server's
 * settings at its top level.
 */
export const ServerFile = z.union([z.object({ servers: z.array(ServerSettings).min(1) }), ServerSettings])

export function serversOf(file: z.infer<typeof ServerFile>): ServerSettings[] {
  return 'servers' in file ? file.servers : [file]
}

export const DEFAULT_HOST = '127.0.0.1'
export const DEFAULT_PORT = 4222
/** max_file_store unless --max-store says otherwise: the streams' max_bytes, with room to spare (DurableConfig). */
export const DEFAULT_MAX_STORE = 16 * 1024 ** 3

/** The default store beside the config: `jetstream`, or `jetstream-<name>` for a named server (three configs may share a directory). */
export function defaultStoreDir(configPath: string, name?: string): string {
  return join(dirname(configPath), name === undefined ? 'jetstream' : `jetstream-${name}`)
}

/** The settings with a JetStream store, defaulted beside the config for a server.json that has none. */
export function withJetStream(s: ServerSettings): ServerSettings & { jetstream: JetStreamSettings } {
  return { ...s, jetstream: s.jetstream ?? { storeDir: defaultStoreDir(s.path, s.name), maxStore: DEFAULT_MAX_STORE, syncAlways: false } }
}

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }

/** `10G`, `512M`, `1T` or plain bytes (binary units, as nats-server reads them), naming `flag` when it is none of these. */
export function parseSize(text: string, flag: string): number {
  const m = /^(\d+)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim())
  const bytes = m ? Number(m[1]) * (UNITS[(m[2] ?? '').toUpperCase()] ?? Number.NaN) : Number.NaN
  if (!Number.isSafeInteger(bytes) || bytes < 1024 ** 2) throw new ApiaryError('invalid_input', `${flag}: "${text}" is not a size of at least 1M (such as 512M, 16G, 1T)`, flag)
  return bytes
}

/** `16 GiB`: a size as a comment says it. */
export function formatSize(bytes: number): string {
  for (const [unit, n] of [['TiB', 1024 ** 4], ['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= n && bytes % n === 0) return `${bytes / n} ${unit}`
  }
  return `${bytes} bytes`
}

/** `host:port`, or `host`, `nats://host:port`, `nats-route://host:port` (port 6222 when none is given), naming the flag at fault. */
export function parseHostPort(text: string, flag: string): HostPort {
  const m = /^(?:(?:nats|nats-route|tls):\/\/)?(\[[0-9A-Fa-f:.]+\]|[^\s:/[\]@]+)(?::(\d{1,5}))?\/?$/.exec(text.trim())
  const hp = m ? HostPort.safeParse({ host: m[1], port: m[2] === undefined ? 6222 : Number(m[2]) }) : undefined
  if (!hp?.success) throw new ApiaryError('invalid_input', `${flag}: "${text}" is not HOST:PORT (without credentials: keeper writes the route password)`, flag)
  return hp.data
}

export interface AccountJwt {
  name: string
  publicKey: string
  jwt: string
}

export interface ServerConfigInput {
  settings: Omit<ServerSettings, 'path' | 'jetstream'> & { jetstream: JetStreamSettings }
  operatorJwt: string
  /** The system account, which nats-server needs in operator mode. */
  system: AccountJwt
  /** The other accounts (apiary's). */
  accounts: readonly AccountJwt[]
  /** The password routes authenticate with (`<dir>/cluster-route.secret`): needed for a cluster. */
  routeSecret?: string
}

/** The user name routes authenticate as; the password is the cluster's secret. */
export const ROUTE_USER = 'route'

/** A string as nats-server's config reads it. */
function q(s: string): string {
  return JSON.stringify(s)
}

function hostPort(hp: HostPort): string {
  return `${hp.host}:${hp.port}`
}

/**
 * The nats-server config (2.9 and later) that trusts apiary's operator and knows its
 * accounts: `resolver: MEMORY` with the account JWTs preloaded, so no account server is
 * needed. It is what the server reads when it starts (or reloads); a revocation reaches a
 * running server as a push of the account JWT (`pushAccountClaims`).
 * Every connection must then present a user JWT signed for one of these accounts, and gets
 * only the permissions in it. JetStream is on (the apiary account's JWT says how much it may
 * store); in a cluster, routes authenticate with the cluster's password.
 */
export function serverConfig(c: ServerConfigInput): string {
  const s = c.settings
  const js = s.jetstream
  const lines = [
    '# nats-server config for apiary, written by `keeper bus server-config`. Regenerate it (keeper bus',
    '# server-config; keeper bus revoke and a re-issue rewrite it) rather than edit it.',
    ...(s.name !== undefined ? [`server_name: ${q(s.name)}`] : []),
    `host: ${q(s.host)}`,
    `port: ${s.port}`,
    '',
    '# An operation may carry 1 MiB of stdin, which travels JSON-encoded in the task (escapes can make',
    '# it several times larger): the default max_payload of 1 MB would refuse it. 8 MB is the most',
    '# nats-server recommends.',
    'max_payload: 8MB',
    '',
    '# Decentralized auth: the operator signs the accounts; users are signed by the account.',
    `operator: ${q(c.operatorJwt)}`,
    `system_account: ${c.system.publicKey}`,
    'resolver: MEMORY',
    'resolver_preload: {',
    ...[...c.accounts, c.system].flatMap((a) => [`  # ${a.name}`, `  ${a.publicKey}: ${q(a.jwt)}`]),
    '}',
    '',
    '# JetStream: apiary keeps its events, its job log and its leases in streams, on disk only (the',
    '# apiary account may store nothing in memory). What the account may use in all is in its JWT.',
    'jetstream {',
    `  store_dir: ${q(js.storeDir)}`,
    `  max_file_store: ${js.maxStore} # ${formatSize(js.maxStore)}`,
    ...(js.syncAlways
      ? ['  # fsync every write before acknowledging it (nats-server 2.10 and later).', '  sync_interval: always']
      : ['  # nats-server 2.9 fsyncs every 60 s and cannot be told to sync every write (sync_interval came', '  # in 2.10: keeper bus server-config --sync-always writes it).']),
    '}',
  ]
  if (s.cluster) {
    if (c.routeSecret === undefined) throw new Error('a cluster config needs the route password')
    const url = (hp: HostPort) => q(`nats-route://${ROUTE_USER}:${c.routeSecret}@${hostPort(hp)}`)
    lines.push(
      '',
      `# JetStream cluster ${s.cluster.name}: streams are replicated between its servers over these routes.`,
      '# A route must present the cluster password: without it, anyone who reaches the cluster port',
      '# could join as a server and read every message. Routes are not encrypted: keep them on a',
      '# private network.',
      'cluster {',
      `  name: ${q(s.cluster.name)}`,
      `  listen: ${q(hostPort(s.cluster.listen))}`,
      `  authorization { user: ${q(ROUTE_USER)}, password: ${q(c.routeSecret)} }`,
      '  routes: [',
      ...s.cluster.routes.map((r) => `    ${url(r)}`),
      '  ]',
      '}',
    )
  }
  if (s.tls) {
    lines.push(
      '',
      s.tls.ca ? '# TLS with client certificates (mTLS): a client must present one signed by the CA.' : '# TLS: clients verify the server.',
      'tls {',
      `  cert_file: ${q(s.tls.cert)}`,
      `  key_file: ${q(s.tls.key)}`,
      ...(s.tls.ca ? [`  ca_file: ${q(s.tls.ca)}`, '  verify: true'] : []),
      '}',
    )
  }
  return `${lines.join('\n')}\n`
}
