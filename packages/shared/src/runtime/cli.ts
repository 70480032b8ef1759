import { homedir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { DURATION_RULE, parseDuration } from './config.ts'
import { ApiaryError } from '../errors.ts'
import { LabelKey, LabelValue, MAX_LABELS } from '../schema/ids.ts'
import { checkOpsEndpoint, type OpsListen } from './ops-server.ts'

interface SpecBase {
  help: string
  /** Environment variable read when the flag is absent. */
  env?: string
  short?: string
  /** Shown in help: `--region R`. */
  value?: string
}

/**
 * One flag. Defaults are written as they would be typed (`'7070'`, `'5s'`) and parsed like
 * the flag itself, so help shows them as typed and a bad default fails the same way.
 */
export type OptionSpec =
  | (SpecBase & { type: 'boolean' })
  | (SpecBase & { type: 'string'; default?: string; multiple?: boolean; choices?: readonly string[] })
  /** A whole number from `min` to `max`. */
  | (SpecBase & { type: 'int'; default?: string; min: number; max: number })
  /**
   * Milliseconds, from a duration (`500ms`, `5s`, `2m`, `1h`; a bare number is seconds, see
   * `parseDuration`). `min` and `max` are durations too. `envUnit: 'ms'` reads a bare number in
   * the environment variable as milliseconds, for a variable whose name promises that.
   */
  | (SpecBase & { type: 'duration'; default?: string; min?: string; max?: string; envUnit?: 'ms' })

export type OptionTable = Record<string, OptionSpec>

type Defaulted<S, V> = S extends { default: string } ? V : V | undefined

type ValueOf<S extends OptionSpec> = S extends { type: 'boolean' }
  ? boolean
  : S extends { multiple: true }
    ? string[]
    : S extends { type: 'int' | 'duration' }
      ? Defaulted<S, number>
      : S extends { choices: readonly (infer C)[] }
        ? Defaulted<S, C>
        : Defaulted<S, string>

/**
 * What `parseCommandLine` gives for a table: a flag with a default is never undefined, an int
 * or a duration is a number (ms), a flag with `choices` is their union.
 */
export type OptionValues<T extends OptionTable> = { -readonly [K in keyof T]: ValueOf<T[K]> }

/**
 * Parses flags against a table, filling absent ones from the environment, then defaults, and
 * converts ints, durations and choices. An unknown flag, a missing value or a bad value is an
 * `invalid_input` error that names the flag.
 *
 * @example
 * const { values } = parseCommandLine('apiary-hive', HIVE_OPTIONS, process.argv.slice(2), process.env)
 */
export function parseCommandLine<T extends OptionTable>(
  program: string,
  table: T,
  argv: string[],
  env: NodeJS.ProcessEnv,
  opts: { positionals?: boolean } = {},
): { values: OptionValues<T>; positionals: string[] } {
  const { values, positionals } = parseTables(program, [table], argv, env, opts.positionals ?? false)
  return { values: values[0] as OptionValues<T>, positionals }
}

/**
 * `parseCommandLine` for a command's own flags and the flags every command takes, in one
 * command line, each table's values typed apart.
 *
 * @example
 * const { values, globals } = parseCommandAndGlobals('keeper jobs', JOBS_OPTIONS, GLOBAL_OPTIONS, argv, env)
 */
export function parseCommandAndGlobals<T extends OptionTable, G extends OptionTable>(
  program: string,
  table: T,
  globals: G,
  argv: string[],
  env: NodeJS.ProcessEnv,
): { values: OptionValues<T>; globals: OptionValues<G>; positionals: string[] } {
  const { values, positionals } = parseTables(program, [table, globals], argv, env, true)
  return { values: values[0] as OptionValues<T>, globals: values[1] as OptionValues<G>, positionals }
}

function parseTables(program: string, tables: OptionTable[], argv: string[], env: NodeJS.ProcessEnv, allowPositionals: boolean) {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {}
  for (const [name, spec] of tables.flatMap((t) => Object.entries(t))) {
    const multiple = spec.type === 'string' && spec.multiple === true
    options[name] = { type: spec.type === 'boolean' ? 'boolean' : 'string', ...(spec.short ? { short: spec.short } : {}), ...(multiple ? { multiple: true } : {}) }
  }
  let parsed
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals })
  } catch (err) {
    throw new ApiaryError('invalid_input', `${flagProblem((err as Error).message)} (see ${program} --help)`, 'flags', { cause: err })
  }
  const given = parsed.values as Record<string, string | boolean | string[] | undefined>
  const values = tables.map((t) => Object.fromEntries(Object.entries(t).map(([name, spec]) => [name, valueOf(name, spec, given[name], env)])))
  return { values, positionals: parsed.positionals }
}

function valueOf(name: string, spec: OptionSpec, given: string | boolean | string[] | undefined, env: NodeJS.ProcessEnv): unknown {
  const fromEnv = spec.env === undefined || env[spec.env] === '' ? undefined : env[spec.env]
  if (spec.type === 'boolean') return given ?? (fromEnv === undefined ? false : fromEnv === '1' || fromEnv === 'true')
  if (spec.type === 'string' && spec.multiple) return given ?? fromEnv?.split(',').filter(Boolean) ?? []
  // A value from the environment is named by its variable, in the unit that variable reads.
  const fromVar = given === undefined && fromEnv !== undefined
  const source = fromVar ? spec.env! : `--${name}`
  const text = (given as string | undefined) ?? fromEnv ?? spec.default
  if (text === undefined) return undefined
  switch (spec.type) {
    case 'int':
      return parseIntFlag(text, source, spec.min, spec.max)
    case 'duration': {
      const bareMs = fromVar && spec.envUnit === 'ms'
      const rule = bareMs ? '500ms, 5s, 2m, 1h; a bare number is ms' : DURATION_RULE
      return parseDurationFlag(bareMs && /^\s*\d+(\.\d+)?\s*$/.test(text) ? `${text.trim()}ms` : text, source, spec.min, spec.max, text, rule)
    }
    default:
      if (spec.choices && !spec.choices.includes(text)) throw new ApiaryError('invalid_input', `${source}: "${text}" must be ${alternatives(spec.choices)}`, source)
      return text
  }
}

function parseDurationFlag(text: string, flag: string, min: string | undefined, max: string | undefined, shown: string, rule: string): number {
  const ms = parseDuration(text, flag)
  if ((min !== undefined && ms < parseDuration(min, 'min')) || (max !== undefined && ms > parseDuration(max, 'max'))) {
    const range = min !== undefined && max !== undefined ? `from ${min} to ${max}` : min !== undefined ? `at least ${min}` : `at most ${max}`
    throw new ApiaryError('invalid_input', `${flag}: "${shown}" must be ${range} (${rule})`, flag)
  }
  return ms
}

/** `a or b`; `one of a, b, c` */
function alternatives(choices: readonly string[]): string {
  return choices.length === 2 ? `${choices[0]} or ${choices[1]}` : `one of ${choices.join(', ')}`
}

function flagProblem(message: string): string {
  const unknown = /Unknown option '([^']+)'/.exec(message)
  if (unknown) return `unknown flag ${unknown[1]}`
  const missing = /Option '([^']+?)(?: <value>)?' argument missing/.exec(message)
  if (missing) return `flag ${missing[1]!.replace(/^-\w, /, '')} needs a value`
  const positional = /Unexpected argument '([^']+)'/.exec(message)
  if (positional) return `unexpected argument "${positional[1]}"`
  return message.replace(/\. To specify.*$/s, '')
}

/** The options part of `--help`, one flag a line with its variable and default. */
export function optionsHelp(table: OptionTable): string {
  const rows = Object.entries(table).map(([name, s]) => {
    const flag = `${s.short ? `-${s.short}, ` : '    '}--${name}${s.type === 'boolean' ? '' : ` ${s.value ?? VALUE_NAME[s.type]}`}`
    const extra = [
      s.type === 'duration' ? DURATION_RULE : '',
      s.env ? `env ${s.env}${s.type === 'duration' && s.envUnit === 'ms' ? ', where a bare number is ms' : ''}` : '',
      s.type !== 'boolean' && s.default !== undefined ? `default ${s.default}` : '',
    ]
    const extras = extra.filter(Boolean).join('; ')
    return [flag, `${s.help}${extras ? ` (${extras})` : ''}`] as const
  })
  const width = Math.max(...rows.map(([f]) => f.length)) + 2
  return rows.map(([f, h]) => `  ${f.padEnd(width)}${h}`).join('\n')
}

const VALUE_NAME = { string: 'VALUE', int: 'N', duration: 'DUR' } as const

/** The same flags with `prefix` before each help text: `SSH mode: …`. */
export function withHelpPrefix<T extends OptionTable>(prefix: string, table: T): T {
  return Object.fromEntries(Object.entries(table).map(([name, spec]) => [name, { ...spec, help: `${prefix}${spec.help}` }])) as T
}

/** The `--nats` of a daemon that cannot run without it; `why` says what it meets there. */
export function requiredNatsUrl(url: string | undefined, why: string): string {
  if (!url) throw new ApiaryError('invalid_input', `--nats (or APIARY_NATS_URL) is required: ${why}`, '--nats')
  return url
}

/** The `--queen-key` of a hive or worker, which runs only what that key signed. */
export function requiredQueenKey(value: string | undefined): string {
  if (!value) {
    throw new ApiaryError(
      'invalid_input',
      '--queen-key (or APIARY_QUEEN_KEY) is required: the queen’s public key (ed25519:…, or the queen’s signing.pub file), so that only work the queen signed runs',
      '--queen-key',
    )
  }
  return value
}

/** Parses `k=v` labels from flags, naming the bad one. */
export function parseLabels(items: string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const item of items) {
    const eq = item.indexOf('=')
    if (eq <= 0) throw new ApiaryError('invalid_input', `${flag}: "${item}" is not key=value`, flag)
    const [key, value] = [item.slice(0, eq), item.slice(eq + 1)]
    const k = LabelKey.safeParse(key)
    if (!k.success) throw new ApiaryError('invalid_input', `${flag}: label name "${key}" ${k.error.issues[0]?.message ?? 'is not valid'}`, flag)
    const v = LabelValue.safeParse(value)
    if (!v.success) throw new ApiaryError('invalid_input', `${flag}: label value "${value}" ${v.error.issues[0]?.message ?? 'is not valid'}`, flag)
    out[key] = value
  }
  if (Object.keys(out).length > MAX_LABELS) throw new ApiaryError('invalid_input', `${flag}: at most ${MAX_LABELS} labels`, flag)
  return out
}

/** An integer flag within bounds, naming the flag when it is not. */
function parseIntFlag(text: string, flag: string, min: number, max: number): number {
  const n = Number(text)
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new ApiaryError('invalid_input', `${flag}: "${text}" must be a whole number from ${min} to ${max}`, flag)
  }
  return n
}

/**
 * How a daemon authenticates to NATS and over what: every secret is a file (mode 0600), never a
 * value in a flag, a URL or the environment (the variables hold paths).
 */
export const NATS_CONNECT_OPTIONS = {
  'nats-creds': {
    type: 'string',
    env: 'APIARY_NATS_CREDS',
    value: 'FILE',
    help: 'NATS credential, mode 0600: a .creds file (user JWT and nkey seed, see keeper bus issue) or a bare user nkey seed',
  },
  'nats-user-file': { type: 'string', env: 'APIARY_NATS_USER_FILE', value: 'FILE', help: 'NATS user and password, mode 0600: two lines, the user, then the password' },
  'nats-token-file': { type: 'string', env: 'APIARY_NATS_TOKEN_FILE', value: 'FILE', help: 'NATS token, mode 0600' },
  'nats-ca': { type: 'string', env: 'APIARY_NATS_CA', value: 'FILE', help: 'CA certificate(s) of the NATS server (PEM); turns TLS on, as a tls:// URL does (with the system CAs)' },
  'nats-cert': { type: 'string', env: 'APIARY_NATS_CERT', value: 'FILE', help: 'client certificate for TLS to NATS (PEM), with --nats-key' },
  'nats-key': { type: 'string', env: 'APIARY_NATS_KEY', value: 'FILE', help: 'private key of --nats-cert (PEM, mode 0600)' },
  'insecure-bus': {
    type: 'boolean',
    env: 'APIARY_INSECURE_BUS',
    help: 'run on a NATS server without authentication: anyone who reaches it can run commands on every node',
  },
} as const satisfies OptionTable

/** Flags of every long-running daemon. A daemon may restate a help text for its role. */
export const DAEMON_OPTIONS = {
  nats: { type: 'string', env: 'APIARY_NATS_URL', value: 'URL', help: 'NATS server(s) of the cluster, comma-separated (required); tls:// turns TLS on' },
  ...NATS_CONNECT_OPTIONS,
  'queen-key': {
    type: 'string',
    env: 'APIARY_QUEEN_KEY',
    value: 'KEY|FILE',
    help: 'the queen’s public key to pin (ed25519:…), or the file holding it (the queen’s signing.pub): only work it signed runs (required)',
  },
  heartbeat: {
    type: 'duration',
    env: 'APIARY_HEARTBEAT_MS',
    // The variable's name says ms, and deployments set it so: its bare number stays ms.
    envUnit: 'ms',
    default: '5s',
    // The queen takes intervals from 100 ms to 10 min (the Heartbeat schema).
    min: '100ms',
    max: '10m',
    help: 'heartbeat interval',
  },
  'log-level': {
    type: 'string',
    env: 'APIARY_LOG_LEVEL',
    default: 'info',
    choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
    value: 'LEVEL',
    help: 'trace, debug, info, warn, error, fatal or silent',
  },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} as const satisfies OptionTable

/** How long a daemon told to stop (SIGTERM) may take to finish or hand back what it holds. */
export const DRAIN_OPTIONS = {
  'drain-grace': {
    type: 'duration',
    env: 'APIARY_DRAIN_GRACE',
    default: '30s',
    min: '0s',
    max: '1h',
    value: 'DUR',
    help: 'on SIGTERM: take no new work and finish or hand back what it holds within this long, then exit 0',
  },
} as const satisfies OptionTable

/** A hive's or worker's operator endpoints: /metrics, /healthz and /readyz on a port of their own (off without --metrics-port). */
export const OPS_OPTIONS = {
  'metrics-port': { type: 'int', min: 1, max: 65535, env: 'APIARY_METRICS_PORT', value: 'PORT', help: 'serve /metrics (Prometheus), /healthz and /readyz on this port (default: off)' },
  'metrics-host': {
    type: 'string',
    env: 'APIARY_METRICS_HOST',
    default: '127.0.0.1',
    value: 'ADDR',
    help: 'address of --metrics-port; one that is not loopback needs --metrics-token-file',
  },
  'metrics-token-file': {
    type: 'string',
    env: 'APIARY_METRICS_TOKEN_FILE',
    value: 'FILE',
    help: 'bearer token (mode 0600) that /metrics asks for (Authorization: Bearer …); /healthz and /readyz never do',
  },
  health: { type: 'boolean', help: 'ask this daemon’s /readyz on --metrics-port and exit 0 if it is ready, 1 if not (a container HEALTHCHECK)' },
  ...DRAIN_OPTIONS,
} as const satisfies OptionTable

/** The operator endpoints and drain grace from `OPS_OPTIONS`, checked: a metrics address others reach needs a token file. */
export interface OpsFlags {
  /** Undefined: no metrics port. */
  metrics: Readonly<OpsListen> | undefined
  drainGraceMs: number
}

export function opsOptionsFrom(v: OptionValues<typeof OPS_OPTIONS>): Readonly<OpsFlags> {
  const port = v['metrics-port']
  if (port !== undefined) checkOpsEndpoint(v['metrics-host'], v['metrics-token-file'])
  return Object.freeze({
    metrics: port === undefined ? undefined : Object.freeze({ host: v['metrics-host'], port, tokenFile: v['metrics-token-file'] }),
    drainGraceMs: v['drain-grace'],
  })
}

/** How an SSH pool knows and authenticates hosts: SSH workers and `keeper dev --inventory`. */
export const SSH_OPTIONS = {
  'known-hosts': { type: 'string', env: 'APIARY_KNOWN_HOSTS', value: 'FILE', help: 'OpenSSH known_hosts of the inventory nodes (default ~/.ssh/known_hosts)' },
  'host-key-policy': { type: 'string', choices: ['strict', 'accept-new'], default: 'strict', value: 'POLICY', help: 'strict (unknown host keys refused) or accept-new (recorded)' },
  identity: { type: 'string', env: 'APIARY_SSH_IDENTITY', value: 'FILE', help: 'private key for inventory nodes that name none (else SSH_AUTH_SOCK)' },
  'passphrase-file': { type: 'string', value: 'FILE', help: 'file (mode 0600) with that key’s passphrase' },
} as const satisfies OptionTable

/** `SSH_OPTIONS` and the pool's limits, for a long-running SSH worker. */
export const SSH_POOL_OPTIONS = {
  ...SSH_OPTIONS,
  'max-per-host': { type: 'int', min: 1, max: 64, default: '2', help: 'connections to one host' },
  'max-connections': { type: 'int', min: 1, max: 100_000, default: '1024', help: 'connections in all' },
  'connect-timeout': { type: 'duration', default: '10s', min: '100ms', max: '1h', help: 'TCP connect, handshake and auth deadline' },
} as const satisfies OptionTable

/** The SSH pool's options from `SSH_OPTIONS` (and the limits when given): what `createSshPool` takes. */
export interface SshPoolFlags {
  knownHosts: string
  hostKeyPolicy: 'strict' | 'accept-new'
  keyFile?: string
  passphraseFile?: string
  /** `$SSH_AUTH_SOCK`. */
  agent?: string
  maxPerHost?: number
  maxTotal?: number
  connectTimeoutMs?: number
}

/**
 * Maps the SSH flags to the pool's options, frozen: the one place they are named twice.
 * @example createSshPool({ ...sshPoolOptionsFrom(values, process.env), log })
 */
export function sshPoolOptionsFrom(
  v: OptionValues<typeof SSH_OPTIONS> & Partial<OptionValues<typeof SSH_POOL_OPTIONS>>,
  env: NodeJS.ProcessEnv,
): Readonly<SshPoolFlags> {
  return Object.freeze({
    knownHosts: v['known-hosts'] ?? join(env.HOME ?? homedir(), '.ssh', 'known_hosts'),
    hostKeyPolicy: v['host-key-policy'],
    ...(v.identity ? { keyFile: v.identity } : {}),
    ...(v['passphrase-file'] ? { passphraseFile: v['passphrase-file'] } : {}),
    ...(env.SSH_AUTH_SOCK ? { agent: env.SSH_AUTH_SOCK } : {}),
    ...(v['max-per-host'] !== undefined ? { maxPerHost: v['max-per-host'] } : {}),
    ...(v['max-connections'] !== undefined ? { maxTotal: v['max-connections'] } : {}),
    ...(v['connect-timeout'] !== undefined ? { connectTimeoutMs: v['connect-timeout'] } : {}),
  })
}

/**
 * How a NATS connection authenticates and whether it runs over TLS: the files the
 * `NATS_CONNECT_OPTIONS` flags name, as `createNatsBus` takes them. At most one credential.
 */
export interface NatsConnectFlags {
  /** A `.creds` file (user JWT + nkey seed) or a bare user nkey seed, mode 0600. */
  credsFile?: string
  /** Two lines: the user, then the password; mode 0600. */
  userFile?: string
  /** The token, mode 0600. */
  tokenFile?: string
  /** TLS on (also on with a `tls://` URL), with these in place of the system CAs and for mTLS. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string }
  /** Connect without a credential (refused otherwise), with a warning at every start. */
  insecure?: boolean
}

const CREDENTIAL_FLAGS = [
  ['credsFile', '--nats-creds'],
  ['userFile', '--nats-user-file'],
  ['tokenFile', '--nats-token-file'],
] as const

/**
 * Refuses NATS connection options that cannot mean what was asked: two credentials, a client
 * certificate without its key or a key without its certificate. Errors name the flags.
 */
export function checkNatsConnectFlags(f: NatsConnectFlags): void {
  const given = CREDENTIAL_FLAGS.filter(([k]) => f[k] !== undefined).map(([, flag]) => flag)
  if (given.length > 1) {
    throw new ApiaryError('invalid_input', `give at most one NATS credential: ${given.join(' and ')} are ${given.length === 2 ? 'both' : 'all'} given`, given[1])
  }
  if (f.tls?.certFile !== undefined && f.tls.keyFile === undefined) {
    throw new ApiaryError('invalid_input', '--nats-cert needs --nats-key: a client certificate is used with its private key', '--nats-key')
  }
  if (f.tls?.keyFile !== undefined && f.tls.certFile === undefined) {
    throw new ApiaryError('invalid_input', '--nats-key needs --nats-cert: a private key is used with its client certificate', '--nats-cert')
  }
}

/**
 * Maps the NATS connection flags to `createNatsBus`'s options, checked and frozen: the one
 * place they are named twice.
 * @example createNatsBus({ url, name, log, identity, ...natsConnectOptionsFrom(values) })
 */
export function natsConnectOptionsFrom(v: OptionValues<typeof NATS_CONNECT_OPTIONS>): Readonly<NatsConnectFlags> {
  const tls = {
    ...(v['nats-ca'] ? { caFile: v['nats-ca'] } : {}),
    ...(v['nats-cert'] ? { certFile: v['nats-cert'] } : {}),
    ...(v['nats-key'] ? { keyFile: v['nats-key'] } : {}),
  }
  const flags: NatsConnectFlags = {
    ...(v['nats-creds'] ? { credsFile: v['nats-creds'] } : {}),
    ...(v['nats-user-file'] ? { userFile: v['nats-user-file'] } : {}),
    ...(v['nats-token-file'] ? { tokenFile: v['nats-token-file'] } : {}),
    ...(Object.keys(tls).length > 0 ? { tls: Object.freeze(tls) } : {}),
    insecure: v['insecure-bus'],
  }
  checkNatsConnectFlags(flags)
  return Object.freeze(flags)
}
