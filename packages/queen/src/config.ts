import { join } from 'node:path'
import { ApiaryError, NodeId, parseOrThrow } from '@apiary/shared'
import {
  DAEMON_OPTIONS,
  defaultStateDir,
  DRAIN_OPTIONS,
  NATS_CONNECT_OPTIONS,
  type NatsConnectFlags,
  natsConnectOptionsFrom,
  type OptionTable,
  type OptionValues,
} from '@apiary/shared/runtime'

export const QUEEN_OPTIONS = {
  nats: { ...DAEMON_OPTIONS.nats, help: 'NATS server(s) to meet hives and workers on, comma-separated; without it, an in-process bus (no remote hives or workers)' },
  ...NATS_CONNECT_OPTIONS,
  'public-url': {
    type: 'string',
    env: 'APIARY_PUBLIC_URL',
    value: 'URL',
    help: 'where browsers reach this queen when a proxy in front terminates TLS (https://apiary.example): the console’s requests must come from that origin',
  },
  'queen-id': { type: 'string', env: 'APIARY_QUEEN_ID', default: 'queen', value: 'ID', help: 'this queen’s name on the bus, as its credential was issued' },
  host: { type: 'string', env: 'APIARY_HOST', default: '127.0.0.1', value: 'ADDR', help: 'address the HTTP API listens on' },
  port: { type: 'int', min: 0, max: 65535, env: 'APIARY_PORT', default: '7070', value: 'PORT', help: 'port the HTTP API listens on (0 picks a free one)' },
  'state-dir': { type: 'string', env: 'APIARY_STATE_DIR', value: 'DIR', help: 'where the job database and token live (default $XDG_STATE_HOME/apiary)' },
  'token-file': { type: 'string', env: 'APIARY_TOKEN_FILE', value: 'FILE', help: 'API token file, mode 0600, created on first start (default <state dir>/token)' },
  'signing-key': {
    type: 'string',
    env: 'APIARY_SIGNING_KEY',
    value: 'FILE',
    help: 'work-signing key (ed25519, mode 0600), created on first start with its public key beside it, <name>.pub (default <state dir>/signing.key)',
  },
  inventory: { type: 'string', env: 'APIARY_INVENTORY', value: 'FILE', help: 'agentless (SSH) nodes, YAML or JSON; re-read on change and on SIGHUP, a bad version is refused' },
  retention: {
    type: 'duration',
    env: 'APIARY_RETENTION',
    default: '30d',
    min: '7d',
    max: '3650d',
    value: 'DURATION',
    help: 'how long the job log and every queen’s index keep a job (at least 7d: a job may run that long)',
  },
  replicas: { type: 'int', min: 1, max: 5, env: 'APIARY_REPLICAS', default: '1', value: 'N', help: 'copies of each stream and of the lease bucket: 1 on a single NATS server, 3 on a cluster' },
  'lease-ttl': {
    type: 'duration',
    env: 'APIARY_LEASE_TTL',
    default: '6s',
    min: '1s',
    max: '5m',
    value: 'DURATION',
    help: 'a leader that stops renewing its lease loses it after this long; a standby then leads',
  },
  ...DRAIN_OPTIONS,
  'rebuild-index': { type: 'boolean', help: 'rebuild the job index (<state dir>/queen.db) from the job log before starting; the old one is kept as queen.db.old' },
  'log-level': DAEMON_OPTIONS['log-level'],
  help: DAEMON_OPTIONS.help,
} as const satisfies OptionTable

/** apiary-queen's settings, every default filled in. */
export interface QueenDaemonConfig {
  /** Undefined: an in-process bus. */
  readonly natsUrl: string | undefined
  /** How the NATS connection authenticates, and whether over TLS. */
  readonly nats: Readonly<NatsConnectFlags>
  /** Its name on the bus (the identity its NATS credential was issued for). */
  readonly queenId: string
  readonly host: string
  readonly port: number
  readonly stateDir: string
  readonly tokenFile: string
  readonly signingKeyFile: string
  readonly inventoryFile: string | undefined
  readonly retentionMs: number
  readonly replicas: number
  readonly leaseTtlMs: number
  readonly rebuildIndex: boolean
  /** On SIGTERM: how long stepping down and ending its streams may take before it exits anyway. */
  readonly drainGraceMs: number
  /** Where browsers reach it, behind a proxy. */
  readonly publicUrl?: string
}

/** @example parseQueenConfig(parseCommandLine('apiary-queen', QUEEN_OPTIONS, argv, env).values, env).port // 7070 */
export function parseQueenConfig(v: OptionValues<typeof QUEEN_OPTIONS>, env: NodeJS.ProcessEnv): QueenDaemonConfig {
  const stateDir = v['state-dir'] ?? defaultStateDir(env)
  return Object.freeze({
    natsUrl: v.nats,
    nats: natsConnectOptionsFrom(v),
    queenId: parseOrThrow(NodeId, v['queen-id'], '--queen-id'),
    host: v.host,
    port: v.port,
    stateDir,
    tokenFile: v['token-file'] ?? join(stateDir, 'token'),
    signingKeyFile: v['signing-key'] ?? join(stateDir, 'signing.key'),
    inventoryFile: v.inventory,
    retentionMs: v.retention,
    replicas: v.replicas,
    leaseTtlMs: v['lease-ttl'],
    rebuildIndex: v['rebuild-index'] === true,
    drainGraceMs: v['drain-grace'],
    ...(v['public-url'] !== undefined ? { publicUrl: publicUrl(v['public-url']) } : {}),
  })
}

/** `--public-url`: an http(s) origin with no credentials, path or query. */
function publicUrl(text: string): string {
  let u: URL
  try {
    u = new URL(text)
  } catch {
    throw new ApiaryError('invalid_input', `--public-url: "${text}" is not a URL (https://apiary.example)`, '--public-url')
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new ApiaryError('invalid_input', `--public-url: "${text}" must be http:// or https://`, '--public-url')
  if (u.username !== '' || u.password !== '') throw new ApiaryError('invalid_input', '--public-url: must not hold a user or password', '--public-url')
  if ((u.pathname !== '/' && u.pathname !== '') || u.search !== '' || u.hash !== '') throw new ApiaryError('invalid_input', `--public-url: "${text}" must be an origin only (no path or query)`, '--public-url')
  return u.origin
}
