import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { nkeys } from '@nats-io/transport-node'
import { type NatsServer, spawnNats } from './nats.ts'

const run = promisify(execFile)

/** What a NATS user may publish and subscribe to (nats-server's `permissions`). */
export interface TestPermissions {
  publish?: string[]
  subscribe?: string[]
}

export type TestUser = ({ user: string; password: string } | { nkey: string }) & { permissions?: TestPermissions }

export interface AuthNatsOptions {
  /** Token authentication (apart from `users`: nats-server takes one or the other). */
  token?: string
  /** Users with a password or an nkey, each with optional permissions. */
  users?: TestUser[]
  /** Decentralised (JWT) authentication: the operator and its accounts, as `operatorAuth()` makes them. */
  operator?: OperatorAuth
  /** TLS with the server certificate of `certs`; `verify` asks every client for a certificate (mTLS). */
  tls?: { certs: TestCerts; verify?: boolean }
}

/**
 * Spawns `nats-server` with a generated configuration (authentication, TLS) on a free loopback
 * port, its files in `dir`, and resolves once it accepts connections.
 *
 * @example const nats = await startAuthNats(dir, { token: 's3cret' })
 */
export async function startAuthNats(dir: string, opts: AuthNatsOptions): Promise<NatsServer> {
  const s = await spawnNats(async (port) => {
    const conf = join(dir, `nats-${port}.conf`)
    await writeFile(conf, serverConfig(port, opts))
    return ['-c', conf]
  })
  return { url: `${opts.tls ? 'tls' : 'nats'}://127.0.0.1:${s.port}`, port: s.port, stop: s.stop }
}

/** The configuration `startAuthNats` writes: a loopback listener and `o`'s authentication and TLS. */
export function serverConfig(port: number, o: AuthNatsOptions): string {
  const lines = [`listen: 127.0.0.1:${port}`, 'http: 0']
  if (o.token !== undefined) lines.push(`authorization { token: ${JSON.stringify(o.token)} }`)
  if (o.users) lines.push(`authorization { users: ${JSON.stringify(o.users.map(userEntry))} }`)
  if (o.operator) {
    lines.push(`operator: ${o.operator.operatorJwt}`, 'resolver: MEMORY', `resolver_preload: ${JSON.stringify({ [o.operator.accountPublicKey]: o.operator.accountJwt })}`)
  }
  if (o.tls) {
    const { certs, verify } = o.tls
    lines.push(`tls { cert_file: ${JSON.stringify(certs.serverCert)}, key_file: ${JSON.stringify(certs.serverKey)}, ca_file: ${JSON.stringify(certs.ca)}, verify: ${verify === true}, timeout: 2 }`)
  }
  return `${lines.join('\n')}\n`
}

function userEntry(u: TestUser): Record<string, unknown> {
  const { permissions, ...who } = u
  if (!permissions) return who
  return {
    ...who,
    permissions: {
      ...(permissions.publish ? { publish: { allow: permissions.publish } } : {}),
      ...(permissions.subscribe ? { subscribe: { allow: permissions.subscribe } } : {}),
    },
  }
}

/** A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate, in PEM files. */
export interface TestCerts {
  ca: string
  serverCert: string
  serverKey: string
  clientCert: string
  clientKey: string
}

/** Makes `TestCerts` with `openssl` in `dir`; the keys are mode 0600. */
export async function makeCerts(dir: string): Promise<TestCerts> {
  const f = (name: string) => join(dir, name)
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  await run('openssl', ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=apiary test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  const leaf = async (name: string, cn: string, ext: string) => {
    await writeFile(f(`${name}.ext`), `${ext}\n`)
    await run('openssl', ['req', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`])
    await run('openssl', ['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-set_serial', `0x${randomBytes(8).toString('hex')}`,
      '-days', '2', '-out', f(`${name}.pem`), '-extfile', f(`${name}.ext`)])
    await chmod(f(`${name}.key`), 0o600)
  }
  await leaf('server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth')
  await leaf('client', 'apiary-test-client', 'extendedKeyUsage=clientAuth')
  return { ca: f('ca.pem'), serverCert: f('server.pem'), serverKey: f('server.key'), clientCert: f('client.pem'), clientKey: f('client.key') }
}

/** Writes a file with `mode` (a credential is 0600) and returns its path. */
export async function writeCredential(dir: string, name: string, content: string, mode = 0o600): Promise<string> {
  const path = join(dir, name)
  await writeFile(path, content, { mode })
  await chmod(path, mode)
  return path
}

/** A fresh user nkey: its public key for the server, its seed for the client's file. */
export function userNkey(): { publicKey: string; seed: string } {
  const kp = nkeys.createUser()
  return { publicKey: kp.getPublicKey(), seed: new TextDecoder().decode(kp.getSeed()) }
}

/** An operator with one account, preloaded into the server, and a way to issue users of it. */
export interface OperatorAuth {
  operatorJwt: string
  accountPublicKey: string
  accountJwt: string
  /** A `.creds` file's text for a new user of the account, as `nsc` writes it. */
  userCreds(name: string): string
}

/**
 * JWT (decentralised) authentication for a test server, signed with nkeys: the same JWTs
 * (`ed25519-nkey`, claims version 2) as `nsc` issues, kept to the fields nats-server reads.
 */
export function operatorAuth(): OperatorAuth {
  const operator = nkeys.createOperator()
  const account = nkeys.createAccount()
  const unlimited = { subs: -1, data: -1, payload: -1 }
  const operatorJwt = signJwt(operator, operator.getPublicKey(), 'test-operator', { type: 'operator', version: 2 })
  const accountJwt = signJwt(operator, account.getPublicKey(), 'test-account', {
    type: 'account',
    version: 2,
    limits: { ...unlimited, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 },
  })
  return {
    operatorJwt,
    accountPublicKey: account.getPublicKey(),
    accountJwt,
    userCreds(name) {
      const user = nkeys.createUser()
      const jwt = signJwt(account, user.getPublicKey(), name, { type: 'user', version: 2, pub: {}, sub: {}, ...unlimited })
      const seed = new TextDecoder().decode(user.getSeed())
      return `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n************************* IMPORTANT *************************\nNKEY Seed printed below can be used to sign and prove identity.\nNKEYs are sensitive and should be treated as secrets.\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n\n*************************************************************\n`
    },
  }
}

function signJwt(issuer: ReturnType<typeof nkeys.createOperator>, subject: string, name: string, nats: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const claims = { iat: Math.floor(Date.now() / 1000), iss: issuer.getPublicKey(), name, sub: subject, nats }
  const jti = createHash('sha256').update(JSON.stringify(claims)).digest('hex').slice(0, 52).toUpperCase()
  const body = `${b64({ typ: 'JWT', alg: 'ed25519-nkey' })}.${b64({ jti, ...claims })}`
  return `${body}.${Buffer.from(issuer.sign(new TextEncoder().encode(body))).toString('base64url')}`
}
