import { readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { claimKey, type Identity, newJobId, subjects } from '@apiary/shared'
import { connect, type ConnectionOptions, credsAuthenticator, headers, type Msg, type NatsConnection } from '@nats-io/transport-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, runBin, type SecureBus, startSecureBus, type TempDir, tempDir, waitUntil } from '../harness/index.ts'
import { createNatsBus } from '@apiary/shared/nats'
import { silentLogger } from '@apiary/shared/runtime'
import { nOf, rejectsWithCode, streamCollector, TEST_CONFIG } from '../conformance/durable-suite.ts'
import { spawnNats } from '../harness/nats.ts'
import { waitForLine } from '../harness/process.ts'
import { makeCerts } from '../harness/nats-auth.ts'
import { type ConfiguredNats, startNatsWithConfig } from '../harness/nats-secure.ts'

// The credentials `keeper bus` issues, against a real nats-server running the config it
// writes: each permission is shown by what the server refuses, not only by what it allows.

let tmp: TempDir
let dir: string
let server: ConfiguredNats
const open: NatsConnection[] = []
/** apiary's buses the JetStream tests open, closed after them. */
const buses: { close(): Promise<void> }[] = []
/** The credentials revoked by the tests so far, by node, kept before revoke removed their files. */
const revokedEarlier = new Map<string, Uint8Array>()

async function keeper(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runBin('keeper', ['bus', ...args, '--dir', dir])
}

async function keeperOk(...args: string[]): Promise<string> {
  const r = await keeper(...args)
  if (r.code !== 0) throw new Error(`keeper bus ${args.join(' ')} exited ${r.code}: ${r.stderr}`)
  return r.stdout
}

function creds(name: string): Promise<Uint8Array> {
  return readFile(join(dir, 'creds', `${name}.creds`))
}

async function connectAs(credentials: Uint8Array | undefined, opts: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
  const nc = await connect({
    servers: server.url,
    reconnect: false,
    ...(credentials ? { authenticator: credsAuthenticator(credentials) } : {}),
    ...opts,
  })
  open.push(nc)
  return nc
}

/** Rejects after `ms` naming what did not happen: every wait here is bounded. */
function within<T>(p: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)))
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

/** The status error the server sends back for what `act` does (a publish it refuses). */
async function statusError(nc: NatsConnection, match: RegExp, act: () => void): Promise<Error> {
  // Listening before acting; returning from the loop ends the listener (a timeout leaves it
  // to the connection's close).
  const seen = (async () => {
    for await (const s of nc.status()) if (s.type === 'error' && match.test(s.error.message)) return s.error
    throw new Error('connection closed before the error')
  })()
  act()
  return within(seen, `error matching ${match}`)
}

/** A publish the server refuses: the publisher hears a permissions violation naming the subject. */
async function refusedPublish(nc: NatsConnection, subject: string): Promise<void> {
  const err = await statusError(nc, /Permissions Violation for Publish/, () => nc.publish(subject, 'forged'))
  expect(err).toMatchObject({ name: 'PermissionViolationError', operation: 'publish', subject })
}

/** A subscription the server refuses: nats.js closes it with a permissions violation. */
async function refusedSubscribe(nc: NatsConnection, subject: string): Promise<void> {
  const sub = nc.subscribe(subject)
  const err = await within(sub.closed, `refusal of the subscription to ${subject}`)
  expect(err).toMatchObject({ name: 'PermissionViolationError', operation: 'subscription', subject })
}

/** The status events a connection has seen so far: `disconnect`, `reconnect`, `error: <message>`… */
function statusLog(nc: NatsConnection): string[] {
  const seen: string[] = []
  void (async () => {
    for await (const s of nc.status()) seen.push(s.type === 'error' ? `error: ${s.error.message}` : s.type)
  })()
  return seen
}

/** A worker as apiary's daemons connect (reconnecting), subscribed to its own node's tasks. */
async function connectedWorker(node: string): Promise<{ nc: NatsConnection; status: string[]; nextTask(): Promise<string> }> {
  const nc = await connectAs(await creds(`worker.eu.${node}`), { inboxPrefix: subjects.inboxPrefix('worker', node, 'eu'), reconnect: true, reconnectTimeWait: 50, maxReconnectAttempts: 100 })
  const status = statusLog(nc)
  const tasks = nc.subscribe(subjects.task('eu', node))
  const it = tasks[Symbol.asyncIterator]()
  await nc.flush()
  return {
    nc,
    status,
    async nextTask() {
      const r = await within(it.next(), `task for ${node}`)
      if (r.done) throw new Error(`the task subscription of ${node} ended`)
      return r.value.string()
    },
  }
}

/** Everything a queen hears of nodes: events, agentless events, control, heartbeats. */
async function queenListener(): Promise<{ received: string[]; next(subject: string): Promise<void>; settle(): Promise<void> }> {
  const queen = await connectAs(await creds('queen.queen'), { inboxPrefix: subjects.inboxPrefix('queen', 'queen') })
  const received: string[] = []
  const waiting = new Map<string, () => void>()
  const take = (_err: unknown, m: Msg) => {
    received.push(m.subject)
    waiting.get(m.subject)?.()
  }
  for (const s of [subjects.nodeEventsAll, subjects.sshEventsAll, subjects.heartbeatAll]) queen.subscribe(s, { callback: take })
  // The queen may not subscribe to control (it only publishes it): a hive does.
  const hive = await connectAs(await creds('hive.eu.hive-1'), { inboxPrefix: subjects.inboxPrefix('hive', 'hive-1', 'eu') })
  hive.subscribe(subjects.controlAll, { callback: take })
  await Promise.all([queen.flush(), hive.flush()])
  return {
    received,
    next: (subject) => within(new Promise<void>((resolve) => waiting.set(subject, resolve)), `message on ${subject}`),
    // A round trip to each listener: whatever the server had queued for them before has arrived.
    settle: async () => void (await Promise.all([queen.flush(), hive.flush()])),
  }
}

beforeAll(async () => {
  tmp = await tempDir('bus-identity')
  dir = join(tmp.path, 'bus')
  await keeperOk('init')
  // In parallel: the directory lock keeps every registry entry.
  await Promise.all([
    keeperOk('issue', '--role', 'queen'),
    keeperOk('issue', '--role', 'hive', '--region', 'eu', '--id', 'hive-1'),
    keeperOk('issue', '--role', 'worker', '--region', 'eu', '--node-id', 'web-1'),
    keeperOk('issue', '--role', 'ssh-worker', '--region', 'eu', '--id', 'ssh-1'),
    keeperOk('issue', '--role', 'worker', '--region', 'eu', '--node-id', 'web-3'),
    keeperOk('issue', '--role', 'worker', '--region', 'eu', '--node-id', 'web-4'),
    ...['web-5', 'web-6', 'web-7'].map((n) => keeperOk('issue', '--role', 'worker', '--region', 'eu', '--node-id', n)),
  ])
  server = await startNatsWithConfig(join(dir, 'nats-server.conf'), { storeDir: join(tmp.path, 'jetstream-1') })
})

afterAll(async () => {
  await Promise.all(open.map((nc) => nc.close().catch(() => undefined)))
  await server?.stop()
  await tmp?.remove()
})

describe('keeper bus credentials on nats-server 2.9', () => {
  it('refuses a connection without a credential', async () => {
    await expect(connectAs(undefined)).rejects.toThrow(/Authorization Violation/)
  })

  it('serves the max_payload the config sets (8 MiB: a task may carry 1 MiB of stdin)', async () => {
    const nc = await connectAs(await creds('queen.queen'))
    expect(nc.info?.max_payload).toBe(8 * 1024 * 1024)
  })

  it("lets a worker subscribe only to its own node's tasks", async () => {
    const worker = await connectAs(await creds('worker.eu.web-1'), { inboxPrefix: subjects.inboxPrefix('worker', 'web-1', 'eu') })
    const own = worker.subscribe(subjects.task('eu', 'web-1'))
    await refusedSubscribe(worker, subjects.task('eu', 'web-2'))
    await refusedSubscribe(worker, 'apiary.>')
    await refusedSubscribe(worker, '_INBOX.>')
    // A refusal closes only the refused subscription.
    expect(own.isClosed()).toBe(false)
  })

  it("lets a worker publish only its own node's events and heartbeat, nobody else's", async () => {
    const queen = await queenListener()
    const worker = await connectAs(await creds('worker.eu.web-1'), { inboxPrefix: subjects.inboxPrefix('worker', 'web-1', 'eu') })
    const job = newJobId()
    const forged = [
      subjects.nodeEvents('eu', 'web-2', job),
      subjects.nodeEvents('us', 'web-1', job),
      subjects.control(job),
      subjects.heartbeat('worker', 'eu', 'ghost-1'),
      subjects.sshEvents('eu', 'web-1', job),
      // An answer to a request it never received.
      `${subjects.inboxPrefix('hive', 'hive-1', 'eu')}.forged`,
    ]
    for (const s of forged) await refusedPublish(worker, s)
    // Published after the forgeries on the same connection: once the queen has these (and a
    // round trip to each listener), it would have had them, had the server let them through.
    const hb = queen.next(subjects.heartbeat('worker', 'eu', 'web-1'))
    const ev = queen.next(subjects.nodeEvents('eu', 'web-1', job))
    worker.publish(subjects.heartbeat('worker', 'eu', 'web-1'), '{}')
    worker.publish(subjects.nodeEvents('eu', 'web-1', job), '{}')
    await Promise.all([hb, ev])
    await queen.settle()
    expect(queen.received).toEqual([subjects.heartbeat('worker', 'eu', 'web-1'), subjects.nodeEvents('eu', 'web-1', job)])
  })

  it('lets a worker answer a task request it received (resp), replies reaching the hive through its own inbox prefix', async () => {
    const worker = await connectAs(await creds('worker.eu.web-1'), { inboxPrefix: subjects.inboxPrefix('worker', 'web-1', 'eu') })
    worker.subscribe(subjects.task('eu', 'web-1'), { callback: (_err, m) => void m.respond(JSON.stringify({ accepted: true, by: 'web-1' })) })
    await worker.flush()
    const hive = await connectAs(await creds('hive.eu.hive-1'), { inboxPrefix: subjects.inboxPrefix('hive', 'hive-1', 'eu') })
    const reply = await hive.request(subjects.task('eu', 'web-1'), '{}', { timeout: 5000 })
    expect(reply.json()).toEqual({ accepted: true, by: 'web-1' })
    // The shared _INBOX.> is not the hive's: a request through it cannot get its answer.
    const plain = await connectAs(await creds('hive.eu.hive-1'))
    await expect(plain.request(subjects.task('eu', 'web-1'), '{}', { timeout: 5000 })).rejects.toThrow(/Permissions Violation for Subscription to "_INBOX\./)
  })

  it("keeps a hive to its own region's subjects", async () => {
    const hive = await connectAs(await creds('hive.eu.hive-1'), { inboxPrefix: subjects.inboxPrefix('hive', 'hive-1', 'eu') })
    await refusedSubscribe(hive, 'apiary.task.us.*')
    await refusedSubscribe(hive, subjects.hiveJobs('us'))
    await refusedPublish(hive, subjects.task('us', 'x'))
    await refusedPublish(hive, subjects.ssh('us'))
    hive.subscribe(subjects.hiveJobs('eu'), { queue: subjects.hiveQueue('eu') })
    await hive.flush()
    expect(hive.isClosed()).toBe(false)
  })

  it("keeps an SSH worker off the agents' event subjects", async () => {
    const queen = await queenListener()
    const ssh = await connectAs(await creds('ssh-worker.eu.ssh-1'), { inboxPrefix: subjects.inboxPrefix('ssh-worker', 'ssh-1', 'eu') })
    const job = newJobId()
    await refusedPublish(ssh, subjects.nodeEvents('eu', 'web-1', job))
    await refusedPublish(ssh, subjects.sshEvents('us', 'host-1', job))
    await refusedSubscribe(ssh, subjects.ssh('us'))
    const got = queen.next(subjects.sshEvents('eu', 'host-1', job))
    ssh.publish(subjects.sshEvents('eu', 'host-1', job), '{}')
    await got
    await queen.settle()
    expect(queen.received).toEqual([subjects.sshEvents('eu', 'host-1', job)])
  })

  it("gives keeper's system user one thing: the claims update of the apiary account, answered in its own inbox", async () => {
    const sys = await connectAs(await readFile(join(dir, 'sys.creds')), { inboxPrefix: '_INBOX.keeper' })
    const accountJwt = (await readFile(join(dir, 'account.jwt'), 'utf8')).trim()
    const account = JSON.parse(Buffer.from(accountJwt.split('.')[1]!, 'base64url').toString()) as { sub: string }
    const systemAccount = (await readFile(join(dir, 'system-account.jwt'), 'utf8')).trim()
    const system = JSON.parse(Buffer.from(systemAccount.split('.')[1]!, 'base64url').toString()) as { sub: string }
    // The server's monitoring, other accounts' updates, the system account's own events: refused.
    await refusedPublish(sys, '$SYS.REQ.SERVER.PING')
    await refusedPublish(sys, `$SYS.REQ.ACCOUNT.${system.sub}.CLAIMS.UPDATE`)
    await refusedPublish(sys, `$SYS.REQ.ACCOUNT.${account.sub}.CONNZ`)
    await refusedPublish(sys, '$SYS.REQ.SERVER.PING.CONNZ')
    await refusedSubscribe(sys, '$SYS.>')
    await refusedSubscribe(sys, '_INBOX.>')
    const reply = await sys.request(`$SYS.REQ.ACCOUNT.${account.sub}.CLAIMS.UPDATE`, accountJwt, { timeout: 5000 })
    expect(reply.json()).toMatchObject({ data: { code: 200, account: account.sub, message: 'jwt updated' } })
    // A JWT the operator did not sign is refused, and said so.
    const forged = `${accountJwt.slice(0, accountJwt.lastIndexOf('.'))}.${Buffer.from('not a signature').toString('base64url')}`
    const no = await sys.request(`$SYS.REQ.ACCOUNT.${account.sub}.CLAIMS.UPDATE`, forged, { timeout: 5000 })
    expect(no.json()).toMatchObject({ error: { code: 500 } })
  })

  it('revokes at once: the revoked worker is cut off for good, the two others never notice', async () => {
    const [w5, w6, w7] = await Promise.all(['web-5', 'web-6', 'web-7'].map(connectedWorker))
    const hive = await connectAs(await creds('hive.eu.hive-1'), { inboxPrefix: subjects.inboxPrefix('hive', 'hive-1', 'eu') })
    const old = await creds('worker.eu.web-6')
    revokedEarlier.set('web-6', old)
    // revoke pushes to the address server.json records: point it at this server.
    await keeperOk('server-config', '--port', String(server.port))

    const out = await keeperOk('revoke', '--role', 'worker', '--region', 'eu', '--node-id', 'web-6')
    expect(out).toMatch(/revoked worker web-6 of eu: U[A-Z2-7]{55}/)
    expect(out).toContain(`nats-server at nats://127.0.0.1:${server.port} took the account JWT (jwt updated)`)
    // No reload: the server closed the revoked connection on the push, saying why; the
    // client's reconnects were refused until it gave up, and so is a new connection.
    expect(await within(w6!.nc.closed(), 'close of the revoked connection')).toMatchObject({ message: 'Authorization Violation' })
    expect(w6!.status[0]).toBe('error: User Authentication Revoked')
    expect(w6!.status).toContain('reconnecting')
    expect(w6!.status.at(-1)).toBe('close')
    await expect(connectAs(old)).rejects.toThrow(/Authorization Violation/)
    // The others kept their connections: a task published right after reaches each of them.
    hive.publish(subjects.task('eu', 'web-5'), 'after the revoke')
    hive.publish(subjects.task('eu', 'web-7'), 'after the revoke')
    expect(await w5!.nextTask()).toBe('after the revoke')
    expect(await w7!.nextTask()).toBe('after the revoke')
    await Promise.all([w5!.nc.flush(), w7!.nc.flush()])
    for (const w of [w5!, w7!]) {
      expect(w.nc.isClosed()).toBe(false)
      expect(w.status).toEqual([])
    }
  })

  it('when nats-server cannot be reached, revoke says so and exits 4; the config it wrote takes effect on a reload, which drops everyone', async () => {
    const old = await creds('worker.eu.web-3')
    revokedEarlier.set('web-3', old)
    const worker = await connectAs(old)
    const errors: string[] = []
    void (async () => {
      for await (const s of worker.status()) if (s.type === 'error') errors.push(s.error.message)
    })()
    // Another worker, as apiary's daemons connect: reconnecting.
    const other = await connectAs(await creds('worker.eu.web-1'), { reconnect: true, reconnectTimeWait: 50, maxReconnectAttempts: 100 })
    const otherStatus: string[] = []
    const otherBack = (async () => {
      for await (const s of other.status()) {
        otherStatus.push(s.type)
        if (s.type === 'reconnect') return
      }
    })()

    const nobody = `nats://127.0.0.1:${await freePort()}`
    const r = await keeper('revoke', '--role', 'worker', '--region', 'eu', '--node-id', 'web-3', '--server', nobody)
    expect(r.code, r.stderr).toBe(4)
    expect(r.stdout).toMatch(/revoked worker web-3 of eu: U[A-Z2-7]{55}/)
    expect(r.stderr).toContain(`pushing the account JWT to ${nobody} failed (connect): could not connect as keeper's system user`)
    expect(r.stderr).toMatch(/nats-server\.conf holds it.*run keeper bus push --dir .*or reload nats-server now \(kill -HUP/)
    // Until the server has the new account JWT, it admits the revoked key.
    await (await connectAs(old)).close()

    await server.reload()
    // nats-server 2.9.10 reads the new account JWT from the config, closes the revoked user's
    // open connection, saying why...
    expect(await within(worker.closed(), 'close of the revoked connection')).toMatchObject({ message: 'User Authentication Revoked' })
    expect(errors).toContain('User Authentication Revoked')
    // ...and refuses it from then on.
    await expect(connectAs(old)).rejects.toThrow(/Authorization Violation/)
    // A reload that changes an account also drops every other connection that authenticated
    // with a JWT (2.9.10 finds no such nkey user in its config and counts it as moved): they
    // reconnect and are admitted again. The push above does not.
    await within(otherBack, 'reconnect of the other worker')
    expect(otherStatus).toContain('disconnect')
    await other.flush()
    await (await connectAs(await creds('worker.eu.web-1'))).flush()
  })

  it('a restarted nats-server refuses every revoked key (the config is the durable record); one no client has reached yet skips a push, and revoke says so', async () => {
    const fresh = await startNatsWithConfig(join(dir, 'nats-server.conf'), { storeDir: join(tmp.path, 'jetstream-2') })
    try {
      const conn = (c: Uint8Array) => connect({ servers: fresh.url, reconnect: false, authenticator: credsAuthenticator(c) })
      const web7 = await creds('worker.eu.web-7')
      // Nobody of the apiary account has connected to it yet: 2.9.10 answers "skipped" and
      // keeps the account JWT it preloaded, which lacks this revocation.
      const r = await keeper('revoke', '--role', 'worker', '--region', 'eu', '--node-id', 'web-7', '--server', fresh.url)
      expect(r.code, r.stderr).toBe(1)
      expect(r.stderr).toMatch(/failed \(update\): nats-server has not loaded the apiary account .*would still admit the revoked key/)
      // What it read when it started: the keys revoked before, by a push or a reload alike.
      for (const [node, c] of revokedEarlier) await expect(conn(c), node).rejects.toThrow(/Authorization Violation/)
      // That is why "skipped" is a failure: the server still admits web-7...
      const held = await conn(web7)
      open.push(held)
      // ...until a push, now that a client has loaded the account, closes it.
      expect(await keeperOk('push', '--server', fresh.url)).toContain('took the account JWT (jwt updated)')
      expect(await within(held.closed(), 'close of the revoked connection')).toMatchObject({ message: 'User Authentication Revoked' })
      await expect(conn(web7)).rejects.toThrow(/Authorization Violation/)
    } finally {
      await fresh.stop()
    }
  })

  it('re-issuing an identity revokes its previous key; keeper bus push applies it, issuing the system user a directory lacks', async () => {
    const before = await creds('worker.eu.web-4')
    const held = await connectAs(before)
    const out = await keeperOk('issue', '--role', 'worker', '--region', 'eu', '--node-id', 'web-4')
    expect(out).toMatch(/revoked its previous key U[A-Z2-7]{55}; rewrote .*nats-server\.conf/)
    expect(out).toMatch(/apply it to a running nats-server with keeper bus push --dir .* \(it closes only the revoked connections\)/)
    // A bus directory made before keeper issued a system user has no sys.creds.
    await rm(join(dir, 'sys.creds'))
    const pushed = await keeperOk('push', '--server', server.url)
    expect(pushed).toMatch(/issued keeper's system user .*sys\.creds \(this bus directory had none\)/)
    expect(pushed).toContain('took the account JWT (jwt updated)')
    expect(await within(held.closed(), 'close of the previous key\'s connection')).toMatchObject({ message: 'User Authentication Revoked' })
    await expect(connectAs(before)).rejects.toThrow(/Authorization Violation/)
    await (await connectAs(await creds('worker.eu.web-4'))).flush()
  })

  it('issues one node per command in a shell-style loop: 0600 files in 0700 directories, all in the registry', async () => {
    for (const n of ['node-1', 'node-2', 'node-3']) {
      const out = await keeperOk('issue', '--role', 'worker', '--region', 'eu', '--node-id', n)
      expect(out.trim()).toMatch(new RegExp(`^worker ${n} of eu: ${join(dir, 'creds', `worker.eu.${n}.creds`).replaceAll('.', '\\.')} \\(user U[A-Z2-7]{55}\\)$`))
    }
    const mode = async (p: string) => (await stat(p)).mode & 0o777
    expect(await mode(dir)).toBe(0o700)
    expect(await mode(join(dir, 'creds'))).toBe(0o700)
    for (const f of ['identities.json', 'operator.nk', 'account.nk', 'account-signing.nk', 'system-account.nk', 'sys.creds', 'nats-server.conf', ...['node-1', 'node-2', 'node-3'].map((n) => `creds/worker.eu.${n}.creds`)]) {
      expect(await mode(join(dir, f)), f).toBe(0o600)
    }
    const { identities } = JSON.parse(await keeperOk('list', '-o', 'json')) as { identities: { role: string; id: string; region?: string; revokedAt: string | null }[] }
    for (const n of ['node-1', 'node-2', 'node-3']) expect(identities).toContainEqual(expect.objectContaining({ role: 'worker', region: 'eu', id: n, revokedAt: null }))
    expect(identities.filter((e) => e.revokedAt === null).map((e) => `${e.role}.${e.id}`).sort()).toEqual(
      ['hive.hive-1', 'queen.queen', 'ssh-worker.ssh-1', 'worker.web-1', 'worker.web-4', 'worker.web-5', 'worker.node-1', 'worker.node-2', 'worker.node-3'].sort(),
    )
    await (await connectAs(await creds('worker.eu.node-2'))).flush()
  })

  it('names the flag at fault, and keeps an existing authority', async () => {
    const cases: [string[], RegExp][] = [
      [['issue', '--role', 'worker', '--region', 'eu'], /--node-id is required/],
      [['issue', '--role', 'worker', '--region', 'e u', '--node-id', 'n'], /--region: must hold only/],
      [['issue', '--role', 'worker', '--region', 'eu', '--node-id', 'web/1'], /--node-id: must start with a letter or digit/],
      [['issue', '--role', 'hive', '--region', 'eu'], /--id is required for a hive/],
      [['issue', '--role', 'king'], /--role: "king" must be one of queen, hive, worker, ssh-worker/],
      [['revoke', '--role', 'worker', '--region', 'eu', '--node-id', 'nobody'], /no active credential of worker nobody of eu/],
      // Push flags are checked before the revoke changes anything.
      [['revoke', '--role', 'worker', '--region', 'eu', '--node-id', 'web-1', '--tls-cert', join(dir, 'sys.creds')], /--tls-key is required with --tls-cert/],
      [['revoke', '--role', 'worker', '--region', 'eu', '--node-id', 'web-1', '--tls-ca', join(dir, 'no-such-ca.pem')], /--tls-ca: no file .*no-such-ca\.pem/],
      [['revoke', '--role', 'worker', '--region', 'eu', '--node-id', 'web-1', '--server', 'http://127.0.0.1:4222/'], /--server: "http:\/\/127\.0\.0\.1:4222\/" is not nats:\/\/HOST:PORT/],
      [['init'], /already holds a bus authority.*--force/],
    ]
    for (const [args, message] of cases) {
      const r = await keeper(...args)
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr).toMatch(message)
    }
    const { identities } = JSON.parse(await keeperOk('list', '-o', 'json')) as { identities: { id: string; revokedAt: string | null }[] }
    expect(identities).toContainEqual(expect.objectContaining({ id: 'web-1', revokedAt: null }))
  })
})

describe('keeper bus server-config with TLS', () => {
  let tlsTmp: TempDir
  let tlsServer: ConfiguredNats | undefined
  afterAll(async () => {
    await tlsServer?.stop()
    await tlsTmp?.remove()
  })

  it('writes an mTLS config that nats-server enforces: a credential alone is not enough', async () => {
    tlsTmp = await tempDir('bus-tls')
    const c = await makeCerts(tlsTmp.path)
    const bus = join(tlsTmp.path, 'bus')
    const run = async (...args: string[]) => {
      const r = await runBin('keeper', ['bus', ...args, '--dir', bus])
      expect(r.code, r.stderr).toBe(0)
      return r.stdout
    }
    await run('init')
    await run('issue', '--role', 'worker', '--region', 'eu', '--node-id', 'web-1')
    const conf = join(tlsTmp.path, 'nats-tls.conf')
    expect(await run('server-config', '--tls-cert', c.serverCert, '--tls-key', c.serverKey, '--tls-ca', c.ca, '--out', conf)).toContain('TLS with client certificates (mTLS)')
    expect(await readFile(conf, 'utf8')).toMatch(/tls \{\n.*\n.*\n {2}ca_file: .*\n {2}verify: true\n\}/)
    // A revoke rewrites the config where server-config put it, TLS and all.
    expect(JSON.parse(await readFile(join(bus, 'server.json'), 'utf8'))).toMatchObject({ servers: [{ path: conf, tls: { ca: c.ca } }] })

    tlsServer = await startNatsWithConfig(conf)
    const workerCreds = await readFile(join(bus, 'creds', 'worker.eu.web-1.creds'))
    const base = { servers: tlsServer.url, reconnect: false, authenticator: credsAuthenticator(workerCreds) }
    const nc = await connect({ ...base, tls: { caFile: c.ca, certFile: c.clientCert, keyFile: c.clientKey } })
    await nc.flush()
    // The server demands a client certificate...
    await expect(connect({ ...base, tls: { caFile: c.ca } })).rejects.toThrow()
    // ...and a certificate without a credential is not enough either.
    await expect(connect({ servers: tlsServer.url, reconnect: false, tls: { caFile: c.ca, certFile: c.clientCert, keyFile: c.clientKey } })).rejects.toThrow(/Authorization Violation/)

    // keeper's system user is a client like any other: without a certificate, the push is not
    // tried, and revoke says what to give.
    const revoke = await runBin('keeper', ['bus', 'revoke', '--role', 'worker', '--region', 'eu', '--node-id', 'web-1', '--server', tlsServer.url, '--dir', bus])
    expect(revoke.code, revoke.stderr).toBe(4)
    expect(revoke.stderr).toContain(`asks every client for a certificate of ${c.ca} (mTLS, as server.json records): give keeper's with --tls-cert and --tls-key`)
    expect(nc.isClosed()).toBe(false)
    // With one, over TLS verified with the CA server.json records, the push closes web-1's connection.
    expect(await run('push', '--server', tlsServer.url, '--tls-cert', c.clientCert, '--tls-key', c.clientKey)).toContain('took the account JWT (jwt updated)')
    expect(await within(nc.closed(), 'close of the revoked connection')).toMatchObject({ message: 'User Authentication Revoked' })
    await expect(connect({ ...base, tls: { caFile: c.ca, certFile: c.clientCert, keyFile: c.clientKey } })).rejects.toThrow(/Authorization Violation/)
  })
})

// JetStream under the same credentials: what apiary's roles may do with streams, on one
// server and on a cluster of three. The requests are those nats.js 3.3 sends (see
// `permissionsFor`), made by hand so that each refusal is the broker's, not a client's choice.

const QUEEN: Identity = { role: 'queen', id: 'queen' }
const HIVE: Identity = { role: 'hive', region: 'eu', id: 'hive-1' }
const WORKER: Identity = { role: 'worker', region: 'eu', id: 'web-1' }
const SSH: Identity = { role: 'ssh-worker', region: 'eu', id: 'ssh-1' }
const SSH_US: Identity = { role: 'ssh-worker', region: 'us', id: 'ssh-us-1' }
const MIB = 1024 * 1024

interface JsAnswer {
  error?: { code: number; description: string }
  [k: string]: unknown
}

/** Connects as `who` to `servers`, replies coming to its own inbox prefix, as apiary's daemons connect. */
async function connectIdentity(bus: SecureBus, who: Identity, servers: string = bus.url, opts: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
  const nc = await connect({
    servers,
    reconnect: false,
    authenticator: credsAuthenticator(await readFile(bus.creds(who))),
    inboxPrefix: subjects.inboxPrefix(who.role, who.id, who.region),
    ...opts,
  })
  open.push(nc)
  return nc
}

/** The apiary account's public key, from its JWT. */
async function accountKey(busDir: string): Promise<string> {
  const jwt = (await readFile(join(busDir, 'account.jwt'), 'utf8')).trim()
  return (JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { sub: string }).sub
}

/** A JetStream API request and its answer (an `error` in it, when JetStream refused). */
async function js(nc: NatsConnection, subject: string, body?: unknown): Promise<JsAnswer> {
  const reply = await nc.request(subject, body === undefined ? '' : JSON.stringify(body), { timeout: 5000 })
  return reply.json<JsAnswer>()
}

/** A request the broker refuses to carry: nats.js rejects it at once with the violation, naming the subject. */
async function refusedRequest(nc: NatsConnection, subject: string): Promise<void> {
  await expect(nc.request(subject, '{}', { timeout: 5000 }), subject).rejects.toThrow(`Permissions Violation for Publish to "${subject}"`)
}

/** A stream publish (a request: the stream's acknowledgement is the reply), with a dedupe id. */
async function store(nc: NatsConnection, subject: string, data: unknown, id: string, more: Record<string, string> = {}): Promise<JsAnswer> {
  const h = headers()
  h.set('Nats-Msg-Id', id)
  for (const [k, v] of Object.entries(more)) h.set(k, v)
  const reply = await nc.request(subject, JSON.stringify(data), { timeout: 5000, headers: h })
  return reply.json<JsAnswer>()
}

/** apiary's streams as `ensure` makes them: on disk, events and log bounded, the lease bucket a KV stream. */
function streamConfigs(replicas: number) {
  return [
    { name: 'APIARY_EVENTS', subjects: subjects.eventsStream, storage: 'file', discard: 'new', max_bytes: 64 * MIB, num_replicas: replicas },
    { name: 'APIARY_LOG', subjects: [subjects.log], storage: 'file', discard: 'old', max_bytes: 64 * MIB, num_replicas: replicas },
    {
      name: 'KV_APIARY_LEASES',
      subjects: ['$KV.APIARY_LEASES.>'],
      storage: 'file',
      max_msgs_per_subject: 1,
      discard: 'new',
      allow_rollup_hdrs: true,
      deny_delete: true,
      allow_direct: false,
      max_age: 10e9,
      num_replicas: replicas,
    },
    {
      name: 'KV_APIARY_SECRETS',
      subjects: ['$KV.APIARY_SECRETS.>'],
      storage: 'file',
      max_msgs_per_subject: 1,
      max_bytes: 16 * MIB,
      discard: 'new',
      allow_rollup_hdrs: true,
      deny_delete: true,
      allow_direct: false,
      max_age: 60e9,
      num_replicas: replicas,
    },
    {
      name: 'KV_APIARY_CLAIMS',
      subjects: ['$KV.APIARY_CLAIMS.>'],
      storage: 'file',
      max_msgs_per_subject: 1,
      max_bytes: 16 * MIB,
      discard: 'old',
      allow_rollup_hdrs: false,
      deny_delete: true,
      deny_purge: true,
      allow_direct: true,
      max_age: 60e9,
      num_replicas: replicas,
    },
  ]
}

/** Makes apiary's streams as the queen, each created or, when there, updated. */
async function ensureStreams(queen: NatsConnection, replicas: number): Promise<void> {
  for (const sc of streamConfigs(replicas)) {
    const made = await js(queen, `$JS.API.STREAM.CREATE.${sc.name}`, sc)
    expect(made.error, sc.name).toBeUndefined()
    expect(await js(queen, `$JS.API.STREAM.UPDATE.${sc.name}`, sc)).not.toHaveProperty('error')
  }
}

/** Pulls up to `batch` messages of a consumer into the queen's inbox, as a pull consumer does. */
async function pull(nc: NatsConnection, stream: string, consumer: string, batch: number): Promise<Msg[]> {
  const inbox = `${subjects.inboxPrefix('queen', 'queen')}.pull.${stream}.${consumer}`
  const sub = nc.subscribe(inbox)
  const got: Msg[] = []
  const done = (async () => {
    for await (const m of sub) {
      // A 404/408 status ends the pull: nothing more is waiting.
      if (m.headers?.code && m.headers.code >= 400) return
      got.push(m)
      if (got.length === batch) return
    }
  })()
  nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`, JSON.stringify({ batch, expires: 2e9 }), { reply: inbox })
  await within(done, `${batch} messages of ${stream}/${consumer}`)
  sub.unsubscribe()
  return got
}

describe('JetStream on the secure bus', () => {
  let root: TempDir
  let bus: SecureBus

  beforeAll(async () => {
    root = await tempDir('bus-jetstream')
    bus = await startSecureBus(root.path, [QUEEN, HIVE, WORKER, SSH, SSH_US])
  })
  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close()))
    await bus?.stop()
    await root?.remove()
  })

  it('gives the account JetStream on disk only, for five streams, within the store the server config gives', async () => {
    const queen = await connectIdentity(bus, QUEEN)
    expect(await js(queen, '$JS.API.INFO')).toMatchObject({ limits: { max_memory: 0, max_storage: 16 * 1024 * MIB, max_streams: 5, max_consumers: 128, max_ack_pending: 4096 } })
    // Nothing in memory: a stream kept there would not survive a restart.
    expect(await js(queen, '$JS.API.STREAM.CREATE.APIARY_LOG', { ...streamConfigs(1)[1], storage: 'memory' })).toMatchObject({ error: { description: 'insufficient memory resources available' } })
    // What the streams may hold together is what the account may store.
    expect(await js(queen, '$JS.API.STREAM.CREATE.APIARY_LOG', { ...streamConfigs(1)[1], max_bytes: 17 * 1024 * MIB })).toMatchObject({ error: { description: 'insufficient storage resources available' } })
  })

  it("lets the queen make apiary's streams, lease, secrets and claims buckets, and no others; never delete them, and purge only the events stream", async () => {
    const queen = await connectIdentity(bus, QUEEN)
    await ensureStreams(queen, 1)
    for (const name of ['APIARY_EVENTS', 'APIARY_LOG', 'KV_APIARY_LEASES', 'KV_APIARY_SECRETS', 'KV_APIARY_CLAIMS']) expect(await js(queen, `$JS.API.STREAM.INFO.${name}`), name).toMatchObject({ config: { name } })
    // The leader trims what it applied from the events stream.
    expect(await js(queen, '$JS.API.STREAM.PURGE.APIARY_EVENTS', { seq: 1 })).toMatchObject({ success: true })
    for (const subject of [
      '$JS.API.STREAM.CREATE.OTHER',
      '$JS.API.STREAM.DELETE.APIARY_EVENTS',
      '$JS.API.STREAM.DELETE.KV_APIARY_LEASES',
      '$JS.API.STREAM.DELETE.KV_APIARY_SECRETS',
      '$JS.API.STREAM.PURGE.KV_APIARY_SECRETS',
      '$JS.API.CONSUMER.CREATE.KV_APIARY_SECRETS.watch',
      '$JS.API.DIRECT.GET.KV_APIARY_SECRETS',
      '$JS.API.STREAM.DELETE.KV_APIARY_CLAIMS',
      '$JS.API.STREAM.PURGE.KV_APIARY_CLAIMS',
      '$JS.API.STREAM.MSG.GET.KV_APIARY_CLAIMS',
      '$JS.API.DIRECT.GET.KV_APIARY_CLAIMS.$KV.APIARY_CLAIMS.eu.j1.db-1',
      '$JS.API.STREAM.PURGE.APIARY_LOG',
      '$JS.API.STREAM.MSG.DELETE.APIARY_LOG',
      '$JS.API.STREAM.LIST',
      '$JS.API.STREAM.NAMES',
      '$JS.API.CONSUMER.CREATE.KV_APIARY_LEASES.watch',
      `$JS.API.ACCOUNT.PURGE.${await accountKey(bus.dir)}`,
    ]) {
      await refusedRequest(queen, subject)
    }
  })

  it("stores a worker's, an SSH worker's and a hive's own events in APIARY_EVENTS, acknowledged in their own inboxes, once per dedupe id", async () => {
    const [worker, ssh, hive] = await Promise.all([connectIdentity(bus, WORKER), connectIdentity(bus, SSH), connectIdentity(bus, HIVE)])
    const job = newJobId()
    const ev = await store(worker, subjects.nodeEvents('eu', 'web-1', job), { type: 'node.finished' }, `${job}/web-1/finished`)
    expect(ev).toMatchObject({ stream: 'APIARY_EVENTS', seq: expect.any(Number) })
    expect(await store(worker, subjects.nodeEvents('eu', 'web-1', job), { type: 'node.finished' }, `${job}/web-1/finished`)).toMatchObject({ seq: ev.seq, duplicate: true })
    expect(await store(ssh, subjects.sshEvents('eu', 'db-1', job), { type: 'node.finished' }, `${job}/db-1/finished`)).toMatchObject({ stream: 'APIARY_EVENTS' })
    expect(await store(hive, subjects.hiveEvents('eu', job), { type: 'node.lost' }, `${job}/web-2/lost/1`)).toMatchObject({ stream: 'APIARY_EVENTS' })
    // The stream takes no rollup from a producer: it cannot wipe what others stored.
    expect(await store(worker, subjects.nodeEvents('eu', 'web-1', job), {}, `${job}/web-1/rollup`, { 'Nats-Rollup': 'all' })).toMatchObject({ error: { description: 'rollup not permitted' } })
  })

  it('lets the queen consume the events, write the job log, read it back and hold a lease', async () => {
    const queen = await connectIdentity(bus, QUEEN)
    const worker = await connectIdentity(bus, WORKER)
    const job = newJobId()
    for (const kind of ['started', 'finished']) await store(worker, subjects.nodeEvents('eu', 'web-1', job), { kind }, `${job}/web-1/${kind}`)

    // The leader's durable consumer: every event so far, acknowledged at once with AckAll.
    expect(await js(queen, '$JS.API.CONSUMER.CREATE.APIARY_EVENTS.queen', { stream_name: 'APIARY_EVENTS', config: { durable_name: 'queen', ack_policy: 'all', max_ack_pending: 4096 } })).not.toHaveProperty('error')
    const last = (await js(queen, '$JS.API.STREAM.INFO.APIARY_EVENTS')) as { state: { last_seq: number } }
    const events = await pull(queen, 'APIARY_EVENTS', 'queen', last.state.last_seq)
    expect(events.at(-1)?.json()).toEqual({ kind: 'finished' })
    events.at(-1)!.respond('+ACK')
    await waitUntil(async () => ((await js(queen, '$JS.API.CONSUMER.INFO.APIARY_EVENTS.queen')) as { ack_floor?: { stream_seq: number } }).ack_floor?.stream_seq === last.state.last_seq, 'the ack floor')

    // The job log, fenced: a record stored only while the log's last sequence is the one expected.
    const first = await store(queen, subjects.log, { records: 1 }, `log/${job}/1`)
    expect(first).toMatchObject({ stream: 'APIARY_LOG' })
    expect(await store(queen, subjects.log, { records: 2 }, `log/${job}/2`, { 'Nats-Expected-Last-Sequence': String(first.seq) })).not.toHaveProperty('error')
    expect(await store(queen, subjects.log, { records: 3 }, `log/${job}/3`, { 'Nats-Expected-Last-Sequence': String(first.seq) })).toMatchObject({ error: { code: 400 } })

    // A standby's ordered reader: an ephemeral consumer in memory, deleted when done.
    const reader = `reader_${job.slice(-8)}`
    expect(
      await js(queen, `$JS.API.CONSUMER.CREATE.APIARY_LOG.${reader}`, { stream_name: 'APIARY_LOG', config: { name: reader, ack_policy: 'none', mem_storage: true, num_replicas: 1, inactive_threshold: 60e9 } }),
    ).not.toHaveProperty('error')
    expect((await pull(queen, 'APIARY_LOG', reader, 2)).map((m) => m.json())).toEqual([{ records: 1 }, { records: 2 }])
    expect(await js(queen, `$JS.API.CONSUMER.DELETE.APIARY_LOG.${reader}`)).toMatchObject({ success: true })

    // The lease: created only when absent, read back from the stream's leader.
    expect(await store(queen, '$KV.APIARY_LEASES.leader', 'queen-1', `lease/${job}`, { 'Nats-Expected-Last-Subject-Sequence': '0' })).toMatchObject({ stream: 'KV_APIARY_LEASES' })
    const got = (await js(queen, '$JS.API.STREAM.MSG.GET.KV_APIARY_LEASES', { last_by_subj: '$KV.APIARY_LEASES.leader' })) as { message?: { data: string } }
    expect(JSON.parse(Buffer.from(got.message?.data ?? '', 'base64').toString())).toBe('queen-1')
  })

  it("refuses hives, workers and SSH workers every JetStream call: no stream made, changed, read, purged or deleted, no log, no lease, no secret, no claim (but an SSH worker's own region's)", async () => {
    const job = newJobId()
    for (const who of [HIVE, WORKER, SSH]) {
      const nc = await connectIdentity(bus, who)
      for (const subject of [
        '$JS.API.INFO',
        '$JS.API.STREAM.CREATE.APIARY_EVENTS',
        '$JS.API.STREAM.CREATE.MINE',
        '$JS.API.STREAM.UPDATE.APIARY_EVENTS',
        '$JS.API.STREAM.DELETE.APIARY_EVENTS',
        '$JS.API.STREAM.PURGE.APIARY_EVENTS',
        '$JS.API.STREAM.INFO.APIARY_LOG',
        '$JS.API.STREAM.MSG.GET.APIARY_LOG',
        '$JS.API.STREAM.MSG.DELETE.APIARY_EVENTS',
        '$JS.API.DIRECT.GET.APIARY_EVENTS',
        '$JS.API.CONSUMER.CREATE.APIARY_EVENTS.spy',
        '$JS.API.CONSUMER.DURABLE.CREATE.APIARY_EVENTS.spy',
        '$JS.API.CONSUMER.CREATE.APIARY_LOG.spy',
        '$JS.API.CONSUMER.MSG.NEXT.APIARY_EVENTS.queen',
        '$JS.API.CONSUMER.DELETE.APIARY_EVENTS.queen',
        '$JS.API.STREAM.MSG.GET.KV_APIARY_LEASES',
        '$JS.API.STREAM.MSG.GET.KV_APIARY_SECRETS',
        '$JS.API.DIRECT.GET.KV_APIARY_SECRETS',
        '$JS.API.STREAM.INFO.KV_APIARY_SECRETS',
        '$JS.API.STREAM.INFO.KV_APIARY_CLAIMS',
        '$JS.API.STREAM.MSG.GET.KV_APIARY_CLAIMS',
        '$JS.API.STREAM.PURGE.KV_APIARY_CLAIMS',
        // A direct get that names no key in its subject, and one of another region's key.
        '$JS.API.DIRECT.GET.KV_APIARY_CLAIMS',
        `$JS.API.DIRECT.GET.KV_APIARY_CLAIMS.$KV.APIARY_CLAIMS.${claimKey('us', job, 'db-1')}`,
        ...(who.role === 'ssh-worker' ? [] : [`$JS.API.DIRECT.GET.KV_APIARY_CLAIMS.$KV.APIARY_CLAIMS.${claimKey('eu', job, 'db-1')}`]),
        subjects.log,
      ]) {
        await refusedRequest(nc, subject)
      }
      await refusedPublish(nc, `$KV.APIARY_CLAIMS.${claimKey('us', job, 'db-1')}`)
      if (who.role !== 'ssh-worker') await refusedPublish(nc, `$KV.APIARY_CLAIMS.${claimKey('eu', job, 'db-1')}`)
      await refusedSubscribe(nc, '$KV.APIARY_CLAIMS.>')
      // Taking the lease, acknowledging the leader's deliveries away.
      await refusedPublish(nc, '$KV.APIARY_LEASES.leader')
      await refusedPublish(nc, '$JS.ACK.APIARY_EVENTS.queen.1.1.1.0.0')
      await refusedSubscribe(nc, '$JS.EVENT.>')
      await refusedSubscribe(nc, '$KV.APIARY_LEASES.>')
      // A job's wrapped data key: neither read nor replaced nor purged by anyone but the queen.
      await refusedPublish(nc, `$KV.APIARY_SECRETS.${job}`)
      await refusedSubscribe(nc, '$KV.APIARY_SECRETS.>')
      await refusedSubscribe(nc, subjects.log)
      // And still stores its own events.
      const own = who.role === 'hive' ? subjects.hiveEvents('eu', job) : who.role === 'worker' ? subjects.nodeEvents('eu', who.id, job) : subjects.sshEvents('eu', 'db-1', job)
      expect(await store(nc, own, {}, `${job}/${who.id}`), who.role).toMatchObject({ stream: 'APIARY_EVENTS' })
    }
  })

  it("runs apiary's own streams, consumers and leases on these credentials: the queen's, and a worker's and a hive's publishes", async () => {
    const busOf = (who: Identity) => createNatsBus({ url: bus.url, name: `apiary-${who.role}:${who.id}`, log: silentLogger(), credsFile: bus.creds(who), identity: who })
    const [queen, worker, hive] = await Promise.all([busOf(QUEEN), busOf(WORKER), busOf(HIVE)])
    buses.push(queen, worker, hive)
    // A lease that outlives the test, so that nothing but the refusals below could change its holder.
    await queen.durable.ensure({ ...TEST_CONFIG, leaseTtlMs: 60_000 })
    const job = newJobId()
    const soon = () => Date.now() + 10_000
    const stored = await worker.durable.publish(subjects.nodeEvents('eu', 'web-1', job), { n: 1 }, { id: `${job}/web-1/finished`, deadline: soon() })
    expect(await hive.durable.publish(subjects.hiveEvents('eu', job), { n: 2 }, { id: `${job}/web-2/lost/1`, deadline: soon() })).toMatchObject({ duplicate: false })

    const events = streamCollector((m) => m.ack())
    const consumer = queen.durable.consume('events', 'queen', events.handler, { ackWaitMs: 60_000, maxBytes: 1024 })
    await within(events.until((m) => m.seq === stored.seq + 1), "the leader's consumer reaching the hive's verdict", 10_000)
    await consumer.stop()
    const last = await queen.durable.lastSeq('log')
    expect(await queen.durable.publish(subjects.log, { n: 3 }, { id: `${job}/log`, deadline: soon(), expectLastSeq: last })).toEqual({ seq: last + 1, duplicate: false })
    const log = streamCollector()
    await queen.durable.read('log', log.handler, { afterSeq: last, follow: false, maxBytes: 1024 }).done
    expect(log.seen.map(nOf)).toEqual([3])
    // Another key than the hand-made lease above holds.
    const lease = queen.durable.lease('leader-2', 'queen-a')
    expect(await lease.acquire()).toBe(true)
    expect(await lease.holder()).toBe('queen-a')

    // What the worker's and the hive's connections are refused, through the same API.
    await queen.durable.secrets.put(job, 'wrapped')
    for (const b of [worker, hive]) {
      await rejectsWithCode(b.durable.secrets.get(job), 'unavailable')
      await rejectsWithCode(b.durable.secrets.put(job, 'forged'), 'unavailable')
      await rejectsWithCode(b.durable.secrets.delete(job), 'unavailable')
      await rejectsWithCode(b.durable.lease('leader-2', 'mallory').acquire(), 'unavailable')
      await rejectsWithCode(b.durable.lastSeq('log'), 'unavailable')
      await rejectsWithCode(b.durable.publish(subjects.log, { n: 9 }, { id: `${job}/forged`, deadline: Date.now() + 500 }), 'timeout')
    }
    expect(await lease.holder()).toBe('queen-a')
    expect(await queen.durable.secrets.get(job)).toBe('wrapped')
    await queen.durable.secrets.delete(job)
    await lease.release()
  })

  it("lets an SSH worker claim, read and settle its own region's tasks only: another region's claims are neither taken, read nor changed, and no claim is purged", async () => {
    const busOf = (who: Identity) => createNatsBus({ url: bus.url, name: `apiary-${who.role}:${who.id}`, log: silentLogger(), credsFile: bus.creds(who), identity: who })
    const [queen, eu, us, worker, hive] = await Promise.all([busOf(QUEEN), busOf(SSH), busOf(SSH_US), busOf(WORKER), busOf(HIVE)])
    buses.push(queen, eu, us, worker, hive)
    await queen.durable.ensure({ ...TEST_CONFIG, leaseTtlMs: 60_000 })
    const job = newJobId()
    const euKey = claimKey('eu', job, 'db-1.eu.example')
    const usKey = claimKey('us', job, 'db-1')
    const taken = await eu.durable.claims.create(euKey, 'ssh-1')
    expect(taken).toBeGreaterThan(0)
    expect(await eu.durable.claims.create(euKey, 'ssh-1 again')).toBeUndefined()
    expect(await eu.durable.claims.get(euKey)).toEqual({ value: 'ssh-1', revision: taken })
    const settled = await eu.durable.claims.update(euKey, 'ssh-1: ok', taken!)
    expect(settled).toBeGreaterThan(taken!)
    const usTaken = await us.durable.claims.create(usKey, 'ssh-us-1')
    expect(usTaken).toBeGreaterThan(0)

    // Across regions the broker refuses the publish or the direct get, and the call fails.
    await rejectsWithCode(eu.durable.claims.create(usKey, 'mallory'), 'unavailable')
    await rejectsWithCode(eu.durable.claims.update(usKey, 'mallory', usTaken!), 'unavailable')
    await rejectsWithCode(eu.durable.claims.get(usKey), 'unavailable')
    await rejectsWithCode(us.durable.claims.get(euKey), 'unavailable')
    await rejectsWithCode(us.durable.claims.update(euKey, 'mallory', settled!), 'unavailable')
    // Nor may the queen, a hive or an agent worker touch any.
    for (const b of [queen, worker, hive]) {
      await rejectsWithCode(b.durable.claims.get(euKey), 'unavailable')
      await rejectsWithCode(b.durable.claims.create(claimKey('eu', job, 'db-2'), 'mallory'), 'unavailable')
    }
    expect(await us.durable.claims.get(usKey)).toEqual({ value: 'ssh-us-1', revision: usTaken })
    expect(await eu.durable.claims.get(euKey)).toEqual({ value: 'ssh-1: ok', revision: settled })

    // Its own region's key may not be purged either: the bucket takes no rollup.
    const ssh = await connectIdentity(bus, SSH)
    expect(await store(ssh, `$KV.APIARY_CLAIMS.${euKey}`, 'gone', `purge/${job}`, { 'KV-Operation': 'PURGE', 'Nats-Rollup': 'sub' })).toMatchObject({ error: { description: 'rollup not permitted' } })
    expect(await eu.durable.claims.get(euKey)).toEqual({ value: 'ssh-1: ok', revision: settled })
  })
})

describe('a bus directory made before JetStream', () => {
  let old: TempDir
  let upgraded: ConfiguredNats | undefined
  afterAll(async () => {
    await upgraded?.stop()
    await old?.remove()
  })

  it('gets JetStream from keeper bus push: the account JWT signed again and the config rewritten, a store beside it', async () => {
    old = await tempDir('bus-upgrade')
    const bus = join(old.path, 'bus')
    const run = (...args: string[]) => runBin('keeper', ['bus', ...args, '--dir', bus])
    expect((await run('init')).code).toBe(0)
    expect((await run('issue', '--role', 'queen')).code).toBe(0)
    // What keeper wrote before: one server's settings at the top of server.json, no store.
    const conf = join(bus, 'nats-server.conf')
    const port = await freePort()
    await writeFile(join(bus, 'server.json'), `${JSON.stringify({ host: '127.0.0.1', port, path: conf })}\n`, { mode: 0o600 })
    // No server runs yet: the push fails (exit 4), and the rewritten config is what the server reads when it starts.
    const pushed = await run('push')
    expect(pushed.code, pushed.stderr).toBe(4)
    expect(await readFile(conf, 'utf8')).toContain(`store_dir: ${JSON.stringify(join(bus, 'jetstream'))}`)
    upgraded = await startNatsWithConfig(conf, { port })
    const queen = await connect({ servers: upgraded.url, reconnect: false, authenticator: credsAuthenticator(await readFile(join(bus, 'creds', 'queen.queen.creds'))), inboxPrefix: subjects.inboxPrefix('queen', 'queen') })
    open.push(queen)
    expect(await js(queen, '$JS.API.INFO')).toMatchObject({ limits: { max_streams: 5, max_memory: 0 } })
    // And a push to the running server goes through.
    expect((await run('push')).stdout).toContain('took the account JWT (jwt updated)')
  })
})

describe('a JetStream cluster of three on the secure bus', () => {
  let root: TempDir
  let bus: SecureBus
  const REVOKED: Identity = { role: 'worker', region: 'eu', id: 'web-9' }

  beforeAll(async () => {
    root = await tempDir('bus-cluster')
    bus = await startSecureBus(root.path, [QUEEN, HIVE, WORKER, REVOKED], { cluster: true })
  })
  afterAll(async () => {
    await bus?.stop()
    await root?.remove()
  })

  it('keeps three copies of each stream: an event stored while one server is killed is on it once it restarted on its store', async () => {
    const [n1, n2, n3] = bus.servers
    const queen = await connectIdentity(bus, QUEEN, n1!.url)
    await ensureStreams(queen, 3)
    const info = (await js(queen, '$JS.API.STREAM.INFO.APIARY_EVENTS')) as { cluster: { leader: string; replicas: { name: string }[] } }
    expect([info.cluster.leader, ...info.cluster.replicas.map((r) => r.name)].sort()).toEqual(['n1', 'n2', 'n3'])

    // A follower of the stream that the worker is not connected to dies; two of three still acknowledge.
    const follower = [n2!, n3!].find((s) => s.name !== info.cluster.leader)!
    const via = bus.servers.find((s) => s !== follower)!
    const worker = await connectIdentity(bus, WORKER, via.url)
    await follower.kill()
    expect(follower.running).toBe(false)
    const job = newJobId()
    const stored = await store(worker, subjects.nodeEvents('eu', 'web-1', job), { type: 'node.finished' }, `${job}/web-1/finished`)
    expect(stored).toMatchObject({ stream: 'APIARY_EVENTS', seq: expect.any(Number) })

    await follower.restart()
    const back = await connectIdentity(bus, QUEEN, follower.url)
    await waitUntil(
      async () => {
        const i = (await js(back, '$JS.API.STREAM.INFO.APIARY_EVENTS').catch(() => ({}))) as { state?: { last_seq: number }; cluster?: { replicas?: { name: string; current: boolean }[] } }
        return i.state?.last_seq === stored.seq && (i.cluster?.replicas ?? []).every((r) => r.current)
      },
      `${follower.name} caught up`,
      20_000,
      100,
    )
  })

  it('revokes through one server on all three: every server answers, the revoked worker is cut off where it is, the others stay', async () => {
    const [n1, n2, n3] = bus.servers
    const revokedCreds = await readFile(bus.creds(REVOKED))
    const revoked = await connectIdentity(bus, REVOKED, n3!.url)
    const hive = await connectIdentity(bus, HIVE, n2!.url)
    const r = await runBin('keeper', ['bus', 'revoke', '--role', 'worker', '--region', 'eu', '--node-id', 'web-9', '--server', n1!.url, '--dir', bus.dir])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(`nats-server at ${n1!.url} took the account JWT (jwt updated on n1, n2, n3)`)
    expect(await within(revoked.closed(), 'close of the revoked connection')).toMatchObject({ message: expect.stringMatching(/Revoked|Authorization Violation/) })
    // Revoked on every server, and written into every server's config.
    for (const s of bus.servers) await expect(connect({ servers: s.url, reconnect: false, authenticator: credsAuthenticator(revokedCreds) }), s.name).rejects.toThrow(/Authorization Violation/)
    for (const s of bus.servers) expect(await readFile(s.config, 'utf8')).toContain((await readFile(join(bus.dir, 'account.jwt'), 'utf8')).trim())
    await hive.flush()
    expect(hive.isClosed()).toBe(false)
  })

  it('refuses a server that tries to join without the route password', async () => {
    const n1 = bus.servers[0]!
    const rogue = await spawnNats(async (port) => ['-a', '127.0.0.1', '-p', String(port), '-m', '0', '--cluster_name', 'apiary', '--cluster', `nats://127.0.0.1:${await freePort()}`, '--routes', `nats-route://127.0.0.1:${n1.routePort}`])
    try {
      const refused = /Route Error 'Authorization Violation'/
      if (!refused.test(rogue.output())) await waitForLine(rogue.child, refused, 10_000)
      expect(await n1.waitForLog(/Router connection closed: Authentication Failure/)).toBeTruthy()
    } finally {
      await rogue.stop()
    }
  })
})
