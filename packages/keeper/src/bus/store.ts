import { randomBytes } from 'node:crypto'
import { chmod, mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { ApiaryError, type Identity, isApiaryError, parseOrThrow } from '@apiary/shared'
import { readSecretBytes, readSecretFile } from '@apiary/shared/runtime'
import { type Authority, ACCOUNT_NAME, issueSystemUser, issueUser, keyFromSeed, newAuthority, seedText, signAccount, signOperator, signSystemAccount, SYSTEM_ACCOUNT_NAME } from './authority.ts'
import { BUS_FILES, defaultCredsPath, describeIdentity } from './layout.ts'
import type { Pusher, PushOutcome } from './push.ts'
import { emptyRegistry, parseRegistry, recordIssue, recordRevoke, type Registry, type RegistryEntry, revocationsOf } from './registry.ts'
import { DEFAULT_HOST, DEFAULT_PORT, defaultStoreDir, type JetStreamSettings, serverConfig, ServerFile, serversOf, ServerSettings, withJetStream } from './server-config.ts'

/**
 * A bus directory on disk: the operator, the apiary account and the system account (keys and
 * JWTs), the nats-server config, and the registry of issued credentials. Every command holds
 * `<dir>/.lock` while it changes anything, so commands run in parallel (xargs -P) queue up
 * instead of losing each other's registry entries.
 */

/** Writes a file readable by its owner only, atomically (a reader sees the old or the new file). */
async function writePrivate(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  const fh = await open(tmp, 'w', 0o600)
  try {
    await fh.chmod(0o600)
    await fh.writeFile(data)
    // The registry holds the revocations and the .nk files the only copy of the keys.
    await fh.sync()
    await fh.close()
    await rename(tmp, path)
  } catch (err) {
    await fh.close().catch(() => undefined)
    await unlink(tmp).catch(() => undefined)
    throw err
  }
}

/** `what`: the file that is not there, or that the directory itself is not. */
function missing(dir: string, what: string, cause: unknown): ApiaryError {
  return new ApiaryError('not_found', `${dir} holds no bus authority (${what}): run keeper bus init --dir ${dir} first`, '--dir', { cause })
}

async function readBusFile(dir: string, file: string): Promise<string> {
  try {
    return (await readFile(join(dir, file), 'utf8')).trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw missing(dir, `no ${file}`, err)
    throw err
  }
}

async function readSeed(dir: string, file: string, prefix: 'SO' | 'SA') {
  try {
    return keyFromSeed(await readSecretFile(join(dir, file), file), prefix, join(dir, file))
  } catch (err) {
    if (isApiaryError(err, 'not_found')) throw missing(dir, `no ${file}`, err)
    throw err
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

const LOCK_WAIT_MS = 30_000

/** Runs `fn` holding `<dir>/.lock`; a lock left by a process that is gone is taken over. */
async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const path = join(dir, BUS_FILES.lock)
  const end = Date.now() + LOCK_WAIT_MS
  for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
    try {
      const fh = await open(path, 'wx', 0o600)
      await fh.writeFile(String(process.pid))
      await fh.close()
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw missing(dir, 'no such directory', err)
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim())
      if (Number.isSafeInteger(holder) && holder > 0 && !alive(holder)) {
        // A dead holder's lock is broken only while it still names that holder: the holder may
        // have ended normally after removing it, and the lock now be another live command's.
        const still = (await readFile(path, 'utf8').catch(() => '')).trim()
        if (still === String(holder)) await unlink(path).catch(() => undefined)
        continue
      }
      if (Date.now() > end) throw new ApiaryError('conflict', `${path} is held by process ${holder || '?'} (another keeper bus command): try again once it ends`, '--dir')
      await new Promise((r) => setTimeout(r, wait))
    }
  }
  try {
    return await fn()
  } finally {
    await unlink(path).catch(() => undefined)
  }
}

async function readRegistry(dir: string): Promise<Registry> {
  return parseRegistry(await readBusFile(dir, BUS_FILES.registry), join(dir, BUS_FILES.registry))
}

/** The servers `server.json` records (one, or the servers of one cluster), each with its JetStream store. */
async function readServers(dir: string): Promise<ServerSettings[]> {
  const file = join(dir, BUS_FILES.serverSettings)
  const text = await readBusFile(dir, BUS_FILES.serverSettings)
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new ApiaryError('invalid_input', `${file} is not valid JSON`, file, { cause: err })
  }
  return serversOf(parseOrThrow(ServerFile, json, file)).map(withJetStream)
}

/** The password routes present to each other (`<dir>/cluster-route.secret`), made once, when the first cluster config is written. */
async function routeSecret(dir: string): Promise<string> {
  const path = join(dir, BUS_FILES.routeSecret)
  try {
    return await readSecretFile(path, BUS_FILES.routeSecret)
  } catch (err) {
    if (!isApiaryError(err, 'not_found')) throw err
  }
  // Hex: nothing a route URL would need to escape.
  const secret = randomBytes(32).toString('hex')
  await writePrivate(path, `${secret}\n`)
  return secret
}

async function readAuthority(dir: string): Promise<Authority> {
  return {
    operator: await readSeed(dir, BUS_FILES.operatorSeed, 'SO'),
    account: await readSeed(dir, BUS_FILES.accountSeed, 'SA'),
    signing: await readSeed(dir, BUS_FILES.signingSeed, 'SA'),
    system: await readSeed(dir, BUS_FILES.systemSeed, 'SA'),
  }
}

/**
 * Re-signs the account JWT with the registry's revocations, its JetStream storage the sum of
 * the servers' (`maxStore`), and rewrites every server's config as `servers` say, or else as
 * `server.json` does; new `servers` are kept there. Returns those used and the new JWT.
 */
async function writeAccountAndConfig(dir: string, a: Authority, registry: Registry, servers?: ServerSettings[]): Promise<{ servers: ServerSettings[]; accountJwt: string }> {
  const all = (servers ?? (await readServers(dir))).map(withJetStream)
  const accountJwt = await signAccount(
    a,
    revocationsOf(registry),
    all.reduce((n, s) => n + s.jetstream.maxStore, 0),
  )
  await writePrivate(join(dir, BUS_FILES.accountJwt), `${accountJwt}\n`)
  const operatorJwt = await readBusFile(dir, BUS_FILES.operatorJwt)
  const system = { name: SYSTEM_ACCOUNT_NAME, publicKey: a.system.getPublicKey(), jwt: await readBusFile(dir, BUS_FILES.systemJwt) }
  const secret = all.some((s) => s.cluster) ? await routeSecret(dir) : undefined
  for (const { path, ...settings } of all) {
    const text = serverConfig({ settings, operatorJwt, system, accounts: [{ name: ACCOUNT_NAME, publicKey: a.account.getPublicKey(), jwt: accountJwt }], ...(secret ? { routeSecret: secret } : {}) })
    await writePrivate(path, text)
  }
  // Parsed for the schema's key order: each server reads alike in the file.
  if (servers) await writePrivate(join(dir, BUS_FILES.serverSettings), `${JSON.stringify({ servers: all.map((x) => ServerSettings.parse(x)) }, null, 1)}\n`)
  return { servers: all, accountJwt }
}

/** `<dir>/sys.creds`, keeper's system user, written (0600) with a new key. */
async function writeSystemCreds(dir: string, a: Pick<Authority, 'system' | 'account'>): Promise<{ path: string; creds: Uint8Array }> {
  const path = join(dir, BUS_FILES.systemCreds)
  const { creds } = await issueSystemUser(a)
  await writePrivate(path, creds)
  return { path, creds }
}

/**
 * keeper's system user: `<dir>/sys.creds`, issued now when the directory has none (one made by
 * a keeper that did not issue it yet, or a file removed). Its key is in no registry: nothing
 * revokes it but a new authority (init --force).
 */
async function systemCreds(dir: string, a: Pick<Authority, 'system' | 'account'>): Promise<{ path: string; creds: Uint8Array; issued: boolean }> {
  const path = join(dir, BUS_FILES.systemCreds)
  try {
    return { path, creds: await readSecretBytes(path, BUS_FILES.systemCreds), issued: false }
  } catch (err) {
    if (!isApiaryError(err, 'not_found')) throw err
  }
  return { ...(await writeSystemCreds(dir, a)), issued: true }
}

export interface InitResult {
  dir: string
  operator: string
  account: string
  signingKey: string
  systemAccount: string
  /** keeper's system user, which pushes account JWT updates to nats-server. */
  systemCreds: string
  config: ServerSettings
  /** The active credentials of the authority this one replaced (with --force): `<dir>/creds` is removed. */
  replaced: number
}

/** Creates a bus authority in `dir` (0700); refuses to replace one unless `force`. */
export async function initBus(dir: string, opts: { force: boolean }): Promise<InitResult> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await chmod(dir, 0o700)
  return withLock(dir, async () => {
    const secrets = [BUS_FILES.operatorSeed, BUS_FILES.accountSeed, BUS_FILES.signingSeed, BUS_FILES.systemSeed, BUS_FILES.registry]
    const found = []
    for (const f of secrets) if (await exists(join(dir, f))) found.push(f)
    if (found.length > 0 && !opts.force) {
      throw new ApiaryError(
        'conflict',
        `${dir} already holds a bus authority (${found.join(', ')}); kept. --force replaces it, and every credential issued from it stops working`,
        '--force',
      )
    }
    let replaced = 0
    if (found.length > 0) {
      replaced = (await readRegistry(dir).catch(() => emptyRegistry())).identities.filter((e) => e.revokedAt === null).length
      await rm(join(dir, BUS_FILES.creds), { recursive: true, force: true })
    }
    const a = newAuthority()
    const registry = emptyRegistry()
    await writePrivate(join(dir, BUS_FILES.operatorJwt), `${await signOperator(a)}\n`)
    await writePrivate(join(dir, BUS_FILES.systemJwt), `${await signSystemAccount(a)}\n`)
    await writePrivate(join(dir, BUS_FILES.registry), `${JSON.stringify(registry, null, 1)}\n`)
    await writePrivate(join(dir, BUS_FILES.operatorSeed), `${seedText(a.operator)}\n`)
    await writePrivate(join(dir, BUS_FILES.accountSeed), `${seedText(a.account)}\n`)
    await writePrivate(join(dir, BUS_FILES.signingSeed), `${seedText(a.signing)}\n`)
    await writePrivate(join(dir, BUS_FILES.systemSeed), `${seedText(a.system)}\n`)
    const {
      servers: [config],
    } = await writeAccountAndConfig(dir, a, registry, [{ host: DEFAULT_HOST, port: DEFAULT_PORT, path: join(dir, BUS_FILES.serverConfig) }])
    const sys = await writeSystemCreds(dir, a)
    return {
      dir,
      operator: a.operator.getPublicKey(),
      account: a.account.getPublicKey(),
      signingKey: a.signing.getPublicKey(),
      systemAccount: a.system.getPublicKey(),
      systemCreds: sys.path,
      config: config!,
      replaced,
    }
  })
}

export interface IssueResult {
  identity: Identity
  creds: string
  publicKey: string
  /** The identity's earlier keys, now revoked. */
  revoked: string[]
  /** The server configs rewritten with those revocations: nats-server must reload them (or take a push). */
  configs?: string[]
}

/**
 * A new credential for `who`, written as a `.creds` file (0600) at `out` or
 * `<dir>/creds/<name>.creds`. The identity's earlier keys are revoked: then the account JWT and
 * the server config are rewritten.
 */
export async function issueCredential(dir: string, who: Identity, opts: { out?: string; now?: Date } = {}): Promise<IssueResult> {
  return withLock(dir, async () => {
    const signing = await readSeed(dir, BUS_FILES.signingSeed, 'SA')
    const account = await readSeed(dir, BUS_FILES.accountSeed, 'SA')
    const before = await readRegistry(dir)
    const user = await issueUser(signing, account.getPublicKey(), who)
    const creds = opts.out ?? defaultCredsPath(dir, who)
    if (opts.out === undefined) await mkdir(join(dir, BUS_FILES.creds), { recursive: true, mode: 0o700 })
    await writePrivate(creds, user.creds)
    const { registry, revoked } = recordIssue(before, who, user.publicKey, opts.now ?? new Date())
    await writePrivate(join(dir, BUS_FILES.registry), `${JSON.stringify(registry, null, 1)}\n`)
    const result: IssueResult = { identity: who, creds, publicKey: user.publicKey, revoked: revoked.map((e) => e.publicKey) }
    if (revoked.length === 0) return result
    const { servers } = await writeAccountAndConfig(dir, await readAuthority(dir), registry)
    return { ...result, configs: servers.map((s) => s.path) }
  })
}

export interface RevokeResult {
  identity: Identity
  revoked: string[]
  configs: string[]
  /** The identity's `.creds` file in `<dir>/creds`, removed. */
  removed?: string
  /** What came of handing the new JWT to the running server. */
  push: PushOutcome
  /** keeper's system user, issued for the push because the directory had none. */
  systemIssued?: string
}

/**
 * Revokes every active credential of `who`, re-signs the account JWT and rewrites the config
 * (the durable record, read when nats-server starts); then `opts.push` hands the new JWT to the
 * running server. It pushes holding the lock: two revokes racing could otherwise push in the
 * wrong order, the last push carrying the older JWT, which lacks the other's revocation.
 */
export async function revokeCredential(dir: string, who: Identity, opts: { push: Pusher; now?: Date }): Promise<RevokeResult> {
  return withLock(dir, async () => {
    const { registry, revoked } = recordRevoke(await readRegistry(dir), who, opts.now ?? new Date())
    if (revoked.length === 0) {
      throw new ApiaryError('not_found', `no active credential of ${describeIdentity(who)} in ${join(dir, BUS_FILES.registry)} (see keeper bus list)`, who.role === 'worker' ? '--node-id' : '--id')
    }
    const a = await readAuthority(dir)
    await writePrivate(join(dir, BUS_FILES.registry), `${JSON.stringify(registry, null, 1)}\n`)
    const { servers, accountJwt } = await writeAccountAndConfig(dir, a, registry)
    const creds = defaultCredsPath(dir, who)
    const removed = await rm(creds).then(
      () => creds,
      () => undefined,
    )
    const system = await systemCreds(dir, a)
    const push = await opts.push({ accountPublicKey: a.account.getPublicKey(), accountJwt, servers, system })
    return {
      identity: who,
      revoked: revoked.map((e) => e.publicKey),
      configs: servers.map((s) => s.path),
      ...(removed ? { removed } : {}),
      push,
      ...(system.issued ? { systemIssued: system.path } : {}),
    }
  })
}

export interface PushResult {
  /** The server configs, which hold the same account JWT. */
  configs: string[]
  push: PushOutcome
  systemIssued?: string
}

/**
 * Hands the account JWT (with every revocation so far) to the running servers: after a
 * re-issue, when a revoke's push failed, or when this keeper signs the account differently
 * (a directory made before the account had JetStream gets it so). The JWT is signed again and
 * every config rewritten first, so a server that restarts reads what the running ones took.
 */
export async function pushAccount(dir: string, push: Pusher): Promise<PushResult> {
  return withLock(dir, async () => {
    const a = await readAuthority(dir)
    const { servers, accountJwt } = await writeAccountAndConfig(dir, a, await readRegistry(dir))
    const system = await systemCreds(dir, a)
    const outcome = await push({ accountPublicKey: a.account.getPublicKey(), accountJwt, servers, system })
    return { configs: servers.map((s) => s.path), push: outcome, ...(system.issued ? { systemIssued: system.path } : {}) }
  })
}

/** What `writeServerConfig` takes: one server's settings, its config's path and its store defaulted (`defaultStoreDir`). */
export type ServerConfigRequest = Omit<ServerSettings, 'path' | 'jetstream'> & {
  path?: string
  jetstream: Omit<JetStreamSettings, 'storeDir'> & { storeDir?: string }
}

/**
 * The servers `server.json` records once `next` is written: `next` alone, or, for a server of
 * the cluster already recorded, that cluster with `next` in place of the server of its name.
 * Two servers of a cluster cannot share a config file or a store.
 */
export function nextServers(recorded: readonly ServerSettings[], next: ServerSettings): ServerSettings[] {
  const cluster = next.cluster?.name
  if (cluster === undefined || !recorded.every((s) => s.cluster?.name === cluster)) return [next]
  const others = recorded.filter((s) => s.name !== next.name)
  const n = withJetStream(next)
  for (const o of others.map(withJetStream)) {
    if (o.path === n.path) throw new ApiaryError('conflict', `--out: server ${o.name ?? '?'} of cluster ${cluster} has its config at ${o.path}: give each server its own`, '--out')
    if (o.jetstream.storeDir === n.jetstream.storeDir) throw new ApiaryError('conflict', `--store-dir: server ${o.name ?? '?'} of cluster ${cluster} keeps its streams in ${o.jetstream.storeDir}: give each server its own`, '--store-dir')
  }
  const at = recorded.findIndex((s) => s.name === next.name)
  return at < 0 ? [...recorded, next] : recorded.map((s, i) => (i === at ? next : s))
}

/**
 * Writes a server's config with new settings (and where it goes), remembered for later
 * rewrites: a server alone, or one server of a cluster (run once per server: each keeps the
 * others in `server.json`, and every revoke rewrites all their configs). Returns the servers
 * recorded now, this one first.
 */
export async function writeServerConfig(dir: string, settings: ServerConfigRequest): Promise<ServerSettings[]> {
  return withLock(dir, async () => {
    const a = await readAuthority(dir)
    const name = settings.name
    const path = settings.path ?? join(dir, name === undefined ? BUS_FILES.serverConfig : `nats-server-${name}.conf`)
    const next: ServerSettings = { ...settings, path, jetstream: { ...settings.jetstream, storeDir: settings.jetstream.storeDir ?? defaultStoreDir(path, name) } }
    const recorded = await readServers(dir).catch((err: unknown) => {
      if (isApiaryError(err, 'not_found')) return []
      throw err
    })
    const { servers } = await writeAccountAndConfig(dir, a, await readRegistry(dir), nextServers(recorded, next))
    return [...servers.filter((s) => s.path === path), ...servers.filter((s) => s.path !== path)]
  })
}
/** Every credential issued from `dir`, in the order issued. */
export async function listCredentials(dir: string): Promise<RegistryEntry[]> {
  return (await readRegistry(dir)).identities
}
