import { readFile } from 'node:fs/promises'
import { type ApiaryError, type Bus, isApiaryError } from '@apiary/shared'
import { createLogger, type Logger } from '@apiary/shared/runtime'
import { createNatsBus, type NatsBusOptions } from '@apiary/shared/nats'
import { connect, type NatsConnection, nkeys } from '@nats-io/transport-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, type NatsServer, startNats, type TempDir, tempDir } from '../harness/index.ts'
import { makeCerts, type OperatorAuth, operatorAuth, startAuthNats, type TestCerts, userNkey, writeCredential } from '../harness/nats-auth.ts'

// Every role connects to NATS with its own credential, from a 0600 file, over TLS when asked
// (DESIGN.md, "Trust" 1), and its replies come only to its own inbox prefix ("Trust" 2).

const TOKEN = 'tok-3f9a1c'
const ALICE = { user: 'alice', password: 'correct horse battery' }
const WEB1 = { user: 'web-1', password: 'pw-web-1' }
const ADMIN = { user: 'admin', password: 'pw-admin' }
const NO_AUTH =
  'the bus has no authentication: give --nats-creds (see `keeper bus issue`), --nats-user-file or --nats-token-file, or --insecure-bus to run without'
const INSECURE = 'running on an unauthenticated bus: anyone who reaches NATS can run commands on every node'

let dir: TempDir
let certs: TestCerts
let jwt: OperatorAuth
const seed = userNkey()
const servers: NatsServer[] = []
let open: NatsServer, tokenSrv: NatsServer, usersSrv: NatsServer, jwtSrv: NatsServer, tlsSrv: NatsServer, mtlsSrv: NatsServer
let tokenFile: string

beforeAll(async () => {
  dir = await tempDir('nats-auth')
  certs = await makeCerts(dir.path)
  jwt = operatorAuth()
  const users = [
    ALICE,
    ADMIN,
    { nkey: seed.publicKey },
    // As a worker's credential is issued: replies only through its own inbox prefix.
    { ...WEB1, permissions: { publish: ['test.>'], subscribe: ['_INBOX.worker.eu.web-1.>'] } },
  ]
  ;[open, tokenSrv, usersSrv, jwtSrv, tlsSrv, mtlsSrv] = await Promise.all([
    startNats(),
    startAuthNats(dir.path, { token: TOKEN }),
    startAuthNats(dir.path, { users }),
    startAuthNats(dir.path, { operator: jwt }),
    startAuthNats(dir.path, { token: TOKEN, tls: { certs } }),
    startAuthNats(dir.path, { token: TOKEN, tls: { certs, verify: true } }),
  ])
  servers.push(open, tokenSrv, usersSrv, jwtSrv, tlsSrv, mtlsSrv)
  tokenFile = await writeCredential(dir.path, 'token', `${TOKEN}\n`)
})

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()))
  await dir?.remove()
})

/** A logger whose lines the test can read. */
function capture(): { log: Logger; lines: () => { level: number; msg: string; [k: string]: unknown }[] } {
  const out: string[] = []
  const log = createLogger({ component: 'test', level: 'info', destination: { write: (s: string) => void out.push(s) } })
  return { log, lines: () => out.map((l) => JSON.parse(l) as { level: number; msg: string }) }
}

let n = 0
function bus(o: Omit<NatsBusOptions, 'name' | 'log'> & { log?: Logger }): Promise<Bus> {
  return createNatsBus({ name: `nats-auth-${++n}`, log: o.log ?? capture().log, connectTimeoutMs: 3000, ...o })
}

/** The error `createNatsBus` fails with, and how long it took; a bus that opens fails the test. */
async function refusal(p: Promise<Bus>): Promise<{ err: ApiaryError; ms: number }> {
  const t0 = Date.now()
  const result = await p.then(
    async (b) => {
      await b.close()
      return undefined
    },
    (err: unknown) => err,
  )
  if (!isApiaryError(result)) throw new Error(`expected an ApiaryError, got ${result === undefined ? 'a connected bus' : String(result)}`)
  return { err: result, ms: Date.now() - t0 }
}

/** A request answered on the same connection: it is authenticated and works both ways. */
async function roundTrip(b: Bus): Promise<void> {
  const sub = b.subscribe('test.echo', (m) => m.respond({ echo: m.data }))
  try {
    expect(await b.request('test.echo', { n: 1 }, { timeoutMs: 3000 })).toEqual({ echo: { n: 1 } })
  } finally {
    sub.unsubscribe()
    await b.close()
  }
}

describe('without a credential', () => {
  it('createNatsBus refuses to start unless told --insecure-bus, before it connects', async () => {
    const { err } = await refusal(bus({ url: tokenSrv.url }))
    expect(err).toMatchObject({ code: 'invalid_input', message: NO_AUTH })
    // Not even a server is needed to be told.
    expect((await refusal(bus({ url: `nats://127.0.0.1:${await freePort()}` }))).err.message).toBe(NO_AUTH)
  })

  it('with --insecure-bus it warns, and a server that wants a credential refuses at once, saying so', async () => {
    const { log, lines } = capture()
    const { err, ms } = await refusal(bus({ url: tokenSrv.url, insecure: true, log }))
    expect(err.code).toBe('invalid_input')
    expect(err.message).toContain(`NATS at ${tokenSrv.url} refused the connection: it requires authentication`)
    expect(err.message).toContain('give --nats-creds, --nats-user-file or --nats-token-file')
    expect(ms).toBeLessThan(2000)
    expect(lines().filter((l) => l.msg === INSECURE && l.level === 40)).toHaveLength(1)
  })

  it('with --insecure-bus on an open server it runs, with the warning at every start', async () => {
    const { log, lines } = capture()
    await roundTrip(await bus({ url: open.url, insecure: true, log }))
    await roundTrip(await bus({ url: open.url, insecure: true, log }))
    expect(lines().filter((l) => l.msg === INSECURE)).toHaveLength(2)
  })
})

describe('credential files', () => {
  it('a token, a user and password, an nkey seed and a .creds file each authenticate', async () => {
    const { log, lines } = capture()
    await roundTrip(await bus({ url: tokenSrv.url, tokenFile, log }))
    await roundTrip(await bus({ url: usersSrv.url, userFile: await writeCredential(dir.path, 'alice.user', `${ALICE.user}\n${ALICE.password}\n`), log }))
    await roundTrip(await bus({ url: usersSrv.url, credsFile: await writeCredential(dir.path, 'user.nk', `${seed.seed}\n`), log }))
    await roundTrip(await bus({ url: jwtSrv.url, credsFile: await writeCredential(dir.path, 'alice.creds', jwt.userCreds('alice')), log }))
    expect(lines().filter((l) => l.msg === 'connected to NATS').map((l) => l.auth)).toEqual(['token', 'user', 'nkey', 'creds'])
    // None of them ran insecure.
    expect(lines().some((l) => l.msg === INSECURE)).toBe(false)
  })

  it('a wrong token or password is refused at once with a clear error that does not hold it', async () => {
    const wrongToken = await writeCredential(dir.path, 'wrong-token', 'not-the-token-77\n')
    const t = await refusal(bus({ url: tokenSrv.url, tokenFile: wrongToken }))
    expect(t.err).toMatchObject({ code: 'invalid_input', field: '--nats-token-file' })
    expect(t.err.message).toBe(`NATS at ${tokenSrv.url} refused authentication with --nats-token-file ${wrongToken} (Authorization Violation)`)
    expect(t.ms).toBeLessThan(2000)

    const wrongPass = await writeCredential(dir.path, 'wrong.user', 'alice\nnot-her-password-88\n')
    const u = await refusal(bus({ url: usersSrv.url, userFile: wrongPass }))
    expect(u.err.message).toContain(`refused authentication with --nats-user-file ${wrongPass}`)
    expect(u.err.message).not.toContain('not-her-password-88')
    expect(u.ms).toBeLessThan(2000)

    // A valid seed the server does not know: refused, not retried forever.
    const stranger = await writeCredential(dir.path, 'stranger.nk', userNkey().seed)
    const s = await refusal(bus({ url: usersSrv.url, credsFile: stranger }))
    expect(s.err).toMatchObject({ code: 'invalid_input', field: '--nats-creds' })
    expect(s.ms).toBeLessThan(2000)
  })

  it('a credential file that others may read is refused, naming the file and not its contents', async () => {
    const loose = await writeCredential(dir.path, 'loose-token', `${TOKEN}\n`, 0o644)
    const { err } = await refusal(bus({ url: tokenSrv.url, tokenFile: loose }))
    expect(err).toMatchObject({ code: 'invalid_input', field: '--nats-token-file' })
    expect(err.message).toBe(`--nats-token-file file ${loose} is readable by others (mode 644); run: chmod 600 ${loose}`)
    const looseCreds = await writeCredential(dir.path, 'loose.creds', jwt.userCreds('bob'), 0o640)
    expect((await refusal(bus({ url: jwtSrv.url, credsFile: looseCreds }))).err.message).toContain(`${looseCreds} is readable by others (mode 640)`)
  })

  it('tells a .creds file from a seed by content, and says clearly when a file is neither', async () => {
    const junk = await writeCredential(dir.path, 'junk.creds', 'hunter2-not-a-credential\n')
    const neither = await refusal(bus({ url: usersSrv.url, credsFile: junk }))
    expect(neither.err).toMatchObject({ code: 'invalid_input', field: '--nats-creds' })
    expect(neither.err.message).toBe(
      `--nats-creds ${junk} is neither a NATS .creds file (a user JWT and its nkey seed, from \`keeper bus issue\` or nsc) nor a user nkey seed (one line, SU…)`,
    )
    const halfCreds = jwt.userCreds('carol').split('-----BEGIN USER NKEY SEED-----')[0]!
    const half = await writeCredential(dir.path, 'half.creds', halfCreds)
    expect((await refusal(bus({ url: jwtSrv.url, credsFile: half }))).err.message).toBe(
      `--nats-creds ${half} is not a valid .creds file: it needs the user JWT block and the user nkey seed block`,
    )
    // An account's seed is an nkey seed, but not one a connection can log in with.
    const accountSeed = new TextDecoder().decode(nkeys.createAccount().getSeed())
    const account = await writeCredential(dir.path, 'account.nk', accountSeed)
    expect((await refusal(bus({ url: usersSrv.url, credsFile: account }))).err.message).toBe(
      `--nats-creds ${account} holds an nkey seed that is not a user's (it starts SA, a user's SU)`,
    )
    // A seed with a broken checksum is named, never shown.
    const broken = `${seed.seed.slice(0, -2)}${seed.seed.endsWith('AA') ? 'BB' : 'AA'}`
    const brokenFile = await writeCredential(dir.path, 'broken.nk', broken)
    const bad = await refusal(bus({ url: usersSrv.url, credsFile: brokenFile }))
    expect(bad.err.message).toBe(`--nats-creds ${brokenFile} is not a valid nkey seed (its checksum does not match)`)
  })

  it('a user file needs two lines, the user and then the password', async () => {
    const oneLine = await writeCredential(dir.path, 'one-line.user', 'alice\n')
    expect((await refusal(bus({ url: usersSrv.url, userFile: oneLine }))).err).toMatchObject({
      code: 'invalid_input',
      field: '--nats-user-file',
      message: `--nats-user-file ${oneLine} must hold two lines: the user, then the password`,
    })
  })

  it('takes at most one credential', async () => {
    const userFile = await writeCredential(dir.path, 'alice2.user', `${ALICE.user}\n${ALICE.password}\n`)
    expect((await refusal(bus({ url: usersSrv.url, tokenFile, userFile }))).err).toMatchObject({
      code: 'invalid_input',
      message: 'give at most one NATS credential: --nats-user-file and --nats-token-file are both given',
    })
  })
})

describe('the URL', () => {
  it.each([
    ['user:password@', (port: number) => `nats://alice:hunter2pw@127.0.0.1:${port}`, 'hunter2pw'],
    ['token@', (port: number) => `nats://${TOKEN}@127.0.0.1:${port}`, TOKEN],
    // nats.js would read a numeric password as the port.
    ['user:digits@ in the second server of a cluster', (port: number) => `nats://127.0.0.1:${port},nats://alice:4222999@127.0.0.1:${port}`, '4222999'],
    ['tls://user:password@', (port: number) => `tls://alice:hunter2pw@127.0.0.1:${port}`, 'hunter2pw'],
    // A slash in the password ends the authority for a URL parser, but not for this check.
    ['user:pass/word@', (port: number) => `nats://alice:hunter2/pw@127.0.0.1:${port}`, 'hunter2'],
  ])('holding a credential (%s) is refused without repeating it', async (_what, url, secret) => {
    const { err } = await refusal(bus({ url: url(tokenSrv.port), tokenFile }))
    expect(err).toMatchObject({ code: 'invalid_input', field: '--nats' })
    expect(err.message).toContain('holds a credential in its URL')
    expect(err.message).toContain('put credentials in a file: --nats-creds / --nats-user-file / --nats-token-file')
    expect(err.message).not.toContain(secret)
    expect(JSON.stringify(err)).not.toContain(secret)
  })

  it('takes no query or fragment, where credentials could hide, and does not repeat it', async () => {
    const { err } = await refusal(bus({ url: `nats://127.0.0.1:${tokenSrv.port}?user=alice&pass=hunter2pw`, tokenFile }))
    expect(err).toMatchObject({ code: 'invalid_input', field: '--nats' })
    expect(err.message).toContain('without a query or fragment')
    expect(JSON.stringify(err)).not.toContain('hunter2pw')
  })

  it('may name several servers, comma-separated (a cluster)', async () => {
    const dead = await freePort()
    await roundTrip(await bus({ url: `nats://127.0.0.1:${dead}, ${tokenSrv.url}`, tokenFile }))
  })
})

describe('TLS', () => {
  it('works with the server’s CA: a tls:// URL, or --nats-ca on a nats:// URL', async () => {
    const { log, lines } = capture()
    await roundTrip(await bus({ url: tlsSrv.url, tokenFile, tls: { caFile: certs.ca }, log }))
    await roundTrip(await bus({ url: tlsSrv.url.replace(/^tls:/, 'nats:'), tokenFile, tls: { caFile: certs.ca }, log }))
    expect(lines().filter((l) => l.msg === 'connected to NATS').map((l) => l.tls)).toEqual([true, true])
  })

  it('tls:// without --nats-ca checks the server against the system CAs, and says so when none vouches for it', async () => {
    const { err } = await refusal(bus({ url: tlsSrv.url, tokenFile }))
    expect(err.code).toBe('unreachable')
    expect(err.message).toBe(
      `cannot connect to NATS at ${tlsSrv.url}: unable to verify the first certificate (no system CA vouches for the server: give the CA that signed its certificate with --nats-ca)`,
    )
  })

  it('mTLS: the server refuses a client without a certificate, and takes one with it', async () => {
    const { err, ms } = await refusal(bus({ url: mtlsSrv.url, tokenFile, tls: { caFile: certs.ca }, connectTimeoutMs: 1500 }))
    expect(err.code).toBe('unreachable')
    expect(err.message).toContain('give --nats-cert and --nats-key')
    expect(ms).toBeLessThan(5000)
    await roundTrip(await bus({ url: mtlsSrv.url, tokenFile, tls: { caFile: certs.ca, certFile: certs.clientCert, keyFile: certs.clientKey } }))
  })

  it('a client certificate needs its key, and the key must be private', async () => {
    expect((await refusal(bus({ url: mtlsSrv.url, tokenFile, tls: { caFile: certs.ca, certFile: certs.clientCert } }))).err).toMatchObject({
      code: 'invalid_input',
      message: '--nats-cert needs --nats-key: a client certificate is used with its private key',
    })
    const looseKey = await writeCredential(dir.path, 'loose-client.key', await readFile(certs.clientKey, 'utf8'), 0o644)
    const { err } = await refusal(bus({ url: mtlsSrv.url, tokenFile, tls: { caFile: certs.ca, certFile: certs.clientCert, keyFile: looseKey } }))
    expect(err).toMatchObject({ code: 'invalid_input', field: '--nats-key' })
    expect(err.message).toContain(`${looseKey} is readable by others`)
    expect(err.message).not.toContain('PRIVATE KEY')
  })
})

describe('the inbox prefix', () => {
  let admin: NatsConnection
  const replies: string[] = []
  beforeAll(async () => {
    admin = await connect({ servers: usersSrv.url, user: ADMIN.user, pass: ADMIN.password })
    admin.subscribe('test.ask', {
      callback: (_err, m) => {
        replies.push(m.reply ?? '')
        m.respond(new TextEncoder().encode(JSON.stringify({ ok: true })))
      },
    })
    await admin.flush()
  })
  afterAll(async () => {
    await admin?.close()
  })

  it('replies to a request come to the identity’s own prefix, the one its credential may receive', async () => {
    const userFile = await writeCredential(dir.path, 'web-1.user', `${WEB1.user}\n${WEB1.password}\n`)
    const b = await bus({ url: usersSrv.url, userFile, identity: { role: 'worker', id: 'web-1', region: 'eu' } })
    try {
      expect(await b.request('test.ask', {}, { timeoutMs: 3000 })).toEqual({ ok: true })
      expect(replies.at(-1)).toMatch(/^_INBOX\.worker\.eu\.web-1\.[^.]+\.[^.]+$/)
    } finally {
      await b.close()
    }
  })

  it('without it, the same least-privilege credential gets no reply: the server enforces the prefix', async () => {
    const userFile = await writeCredential(dir.path, 'web-1b.user', `${WEB1.user}\n${WEB1.password}\n`)
    const { log, lines } = capture()
    const b = await bus({ url: usersSrv.url, userFile, log })
    try {
      const err = await b.request('test.ask', {}, { timeoutMs: 500 }).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(isApiaryError(err, 'timeout'), String(err)).toBe(true)
      expect(replies.at(-1)).toMatch(/^_INBOX\.[^.]+\.[^.]+$/)
      // And the bus said why.
      expect(lines().some((l) => l.level === 50 && l.msg.startsWith('NATS refused the reply inbox'))).toBe(true)
    } finally {
      await b.close()
    }
  })
})
