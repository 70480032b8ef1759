import { randomBytes } from 'node:crypto'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { connect, type NatsConnection, tokenAuthenticator, usernamePasswordAuthenticator } from '@nats-io/transport-node'
import { type AuthNatsOptions, serverConfig } from './nats-auth.ts'
import { freePort, type SpawnedNats, spawnNats } from './nats.ts'
import { waitUntil } from './wait.ts'

/** A JetStream `nats-server` that a test can kill and bring back on the same port and store. */
export interface JetStreamNats {
  /** Its `server_name`, as JetStream names a stream's leader. */
  readonly name: string
  readonly url: string
  readonly port: number
  /** SIGKILL: nothing flushed, nothing said to its peers. Resolves once it exited. */
  kill(): Promise<void>
  /** Starts it again (after `kill` or `stop`) on the same port and store; resolves once JetStream answers through it. */
  restart(): Promise<void>
  /** SIGTERM, resolved once it exited. */
  stop(): Promise<void>
  /** Its log since it last started. */
  output(): string
}

/** Authentication of the clients (`users` with passwords, or a `token`), as `startAuthNats` takes it. */
export type JetStreamAuth = Pick<AuthNatsOptions, 'users' | 'token'>

/** Three JetStream servers routed into one cluster on loopback. */
export interface NatsCluster {
  servers: JetStreamNats[]
  /** Every server, comma-separated, as `--nats` takes a cluster. */
  url: string
  /** The server that leads `stream` (a stream's name on the server) now. */
  leaderOf(stream: string): Promise<JetStreamNats>
  stop(): Promise<void>
}

/** How many times three fresh servers are started together before the cluster is given up on. */
const CLUSTER_ATTEMPTS = 3

/** How long JetStream may take to answer after a (re)start: a cluster elects its metadata leader within seconds. */
const READY_MS = 20_000

interface Plan {
  name: string
  port: number
  storeDir: string
  /** The cluster's lines, for a clustered server. */
  cluster?: string
}

/**
 * The harness's own unrestricted user, with which it asks JetStream whether it is ready (the
 * test's users may hold narrow permissions). With a token, the token.
 */
function probeAuth(auth: JetStreamAuth): { config: JetStreamAuth; authenticator: ReturnType<typeof tokenAuthenticator> } {
  if (auth.token !== undefined) return { config: auth, authenticator: tokenAuthenticator(auth.token) }
  const password = randomBytes(18).toString('base64url')
  return {
    config: { users: [...(auth.users ?? []), { user: 'harness-probe', password }] },
    authenticator: usernamePasswordAuthenticator('harness-probe', password),
  }
}

async function startServer(dir: string, plan: Plan, auth: JetStreamAuth, probe: ReturnType<typeof probeAuth>): Promise<JetStreamNats> {
  const conf = join(dir, `${plan.name}.conf`)
  await mkdir(plan.storeDir, { recursive: true })
  const lines = [
    serverConfig(plan.port, probe.config).trimEnd(),
    `server_name: ${plan.name}`,
    `jetstream { store_dir: ${JSON.stringify(plan.storeDir)}, max_memory_store: 256MB, max_file_store: 1GB }`,
    ...(plan.cluster ? [plan.cluster] : []),
  ]
  await writeFile(conf, `${lines.join('\n')}\n`, { mode: 0o600 })
  const url = `nats://127.0.0.1:${plan.port}`
  // The port is the plan's, not the one spawnNats offers: a restart must come back where clients reconnect.
  const spawn = async () => {
    const s = await spawnNats(() => ['-c', conf])
    await jetStreamReady(url, probe.authenticator, s)
    return s
  }
  let s: SpawnedNats = await spawn()
  return {
    name: plan.name,
    url,
    port: plan.port,
    kill: () => s.kill(),
    async restart() {
      await s.kill()
      s = await spawn()
    },
    stop: () => s.stop(),
    output: () => s.output(),
  }
}

/**
 * Resolves once JetStream answers `$JS.API.INFO` through the server at `url` alone: a single
 * server at once, a cluster's once it knows its metadata leader.
 */
async function jetStreamReady(url: string, authenticator: ReturnType<typeof tokenAuthenticator>, s: SpawnedNats): Promise<void> {
  let nc: NatsConnection | undefined
  try {
    nc = await connect({ servers: url, authenticator, ignoreClusterUpdates: true, timeout: 5000 })
    const conn = nc
    let last = ''
    await waitUntil(
      async () => {
        try {
          const reply = await conn.request('$JS.API.INFO', undefined, { timeout: 1000 })
          const body = reply.json<{ error?: { description?: string } }>()
          last = body.error?.description ?? ''
          return body.error === undefined
        } catch (err) {
          last = (err as Error).message
          return false
        }
      },
      `JetStream at ${url} (last answer: ${last})`,
      READY_MS,
      100,
    )
  } catch (err) {
    await s.stop()
    throw new Error(`${(err as Error).message}\n${s.output()}`, { cause: err })
  } finally {
    await nc?.close()
  }
}

/**
 * A single JetStream server on loopback with authentication on, its store in `dir`.
 *
 * @example const nats = await startJetStreamNats(dir, { users: [{ user: 'queen', password }] })
 */
export async function startJetStreamNats(dir: string, auth: JetStreamAuth): Promise<JetStreamNats> {
  const name = `js-${await freePort()}`
  return startServer(dir, { name, port: await freePort(), storeDir: join(dir, name) }, auth, probeAuth(auth))
}

/**
 * Three JetStream servers on loopback routed into one cluster, clients and routes
 * authenticated, each with its store under `dir`; resolves once JetStream has its metadata
 * leader. A server killed with `kill()` comes back on the same ports and store with `restart()`.
 *
 * @example const cluster = await startNatsCluster(dir, { users }); await (await cluster.leaderOf('APIARY_EVENTS')).kill()
 */
export async function startNatsCluster(dir: string, auth: JetStreamAuth): Promise<NatsCluster> {
  const probe = probeAuth(auth)
  const routePass = randomBytes(18).toString('base64url')
  const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()))
  const plans: Plan[] = [0, 1, 2].map((i) => {
    const routes = [0, 1, 2].filter((j) => j !== i).map((j) => `nats-route://route:${routePass}@127.0.0.1:${ports[3 + j]}`)
    return {
      name: `n${i + 1}`,
      port: ports[i]!,
      storeDir: join(dir, `n${i + 1}`),
      cluster: `cluster { name: apiary-test, listen: 127.0.0.1:${ports[3 + i]}, authorization { user: route, password: ${JSON.stringify(routePass)} }, routes: ${JSON.stringify(routes)} }`,
    }
  })
  // All at once: each waits for a metadata leader, which needs a quorum of them up. Now and
  // then three fresh nats-server 2.9s on a loaded machine form no metadata group: then none is
  // left running and the three start again on empty stores, a bounded number of times.
  let servers: JetStreamNats[] = []
  for (let attempt = 1; ; attempt++) {
    const started = await Promise.allSettled(plans.map((p) => startServer(dir, p, auth, probe)))
    servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
    const failed = started.find((r) => r.status === 'rejected')
    if (!failed) break
    await Promise.all(servers.map((s) => s.stop()))
    if (attempt === CLUSTER_ATTEMPTS) throw failed.reason
    await Promise.all(plans.map((p) => rm(p.storeDir, { recursive: true, force: true })))
    process.stderr.write(`nats cluster: no JetStream metadata group formed (attempt ${attempt} of ${CLUSTER_ATTEMPTS})\n`)
  }
  return {
    servers,
    url: servers.map((s) => s.url).join(','),
    async leaderOf(stream) {
      const nc = await connect({ servers: servers.map((s) => s.url), authenticator: probe.authenticator, timeout: 5000 })
      try {
        let leader: JetStreamNats | undefined
        await waitUntil(
          async () => {
            const reply = await nc.request(`$JS.API.STREAM.INFO.${stream}`, undefined, { timeout: 2000 }).catch(() => undefined)
            const name = reply?.json<{ cluster?: { leader?: string } }>().cluster?.leader
            leader = servers.find((s) => s.name === name)
            return leader !== undefined
          },
          `a leader of ${stream}`,
          READY_MS,
          100,
        )
        return leader!
      } finally {
        await nc.close()
      }
    },
    async stop() {
      await Promise.all(servers.map((s) => s.stop()))
    },
  }
}
