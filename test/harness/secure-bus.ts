import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Identity } from '@apiary/shared'
import { freePort } from './nats.ts'
import { type ConfiguredNats, startNatsWithConfig } from './nats-secure.ts'
import { runBin } from './process.ts'

/** One nats-server of a secure bus, with the config and store `keeper bus server-config` gave it. */
export interface SecureServer extends ConfiguredNats {
  /** Its server_name (`n1`…; `nats` for a server alone). */
  name: string
  config: string
  /** JetStream's store_dir: `restart` brings the server back on it, as after a crash. */
  storeDir: string
  /** Where it listens for routes (in a cluster). */
  routePort?: number
}

export interface SecureBus {
  /** The `keeper bus` directory: keys, registry, server configs, credentials. */
  dir: string
  /** The first server (the only one, unless clustered). */
  nats: SecureServer
  /** Every server: one, or the three of a cluster. */
  servers: SecureServer[]
  /** What a daemon's `--nats` takes: the server's URL, or the cluster's, comma-separated. */
  url: string
  /** The `.creds` file of an issued identity. */
  creds(who: Identity): string
  /** Issues one more identity (as an operator enrols a node). */
  issue(who: Identity): Promise<string>
  /**
   * Revokes an identity; every running server drops it at once, and only it. In a cluster, a
   * server that is down (killed) makes the push fail: it reads the revocation when it restarts.
   */
  revoke(who: Identity): Promise<void>
  stop(): Promise<void>
}

export interface SecureBusOptions {
  /** Three servers in a JetStream cluster, routes authenticated, instead of one. */
  cluster?: boolean
}

/** The flags that pick an identity, as `keeper bus issue` and `revoke` take them. */
function identityFlags(who: Identity): string[] {
  if (who.role === 'queen') return ['--role', 'queen', '--id', who.id]
  return ['--role', who.role, '--region', who.region ?? '', who.role === 'worker' ? '--node-id' : '--id', who.id]
}

async function keeperBus(dir: string, args: string[]): Promise<string> {
  const r = await runBin('keeper', ['bus', ...args, '--dir', dir])
  if (r.code !== 0) throw new Error(`keeper bus ${args.join(' ')} exited ${r.code}: ${r.stderr}`)
  return r.stdout
}

const CLUSTER = ['n1', 'n2', 'n3'] as const
/** How many times three fresh servers are started together before the cluster is given up on. */
const CLUSTER_ATTEMPTS = 3

/**
 * Writes each server's config with `keeper bus server-config` (its default --max-store, which
 * the queen's default stream sizes fit; a reservation, not disk used) (a cluster's one after the other:
 * keeper keeps them all in server.json) and starts them together (a cluster's servers wait for
 * a quorum before any is ready).
 */
async function startServers(root: string, dir: string, cluster: boolean): Promise<SecureServer[]> {
  if (!cluster) {
    const storeDir = join(root, 'jetstream')
    const port = await freePort()
    await keeperBus(dir, ['server-config', '--port', String(port), '--store-dir', storeDir])
    const config = join(dir, 'nats-server.conf')
    return [Object.assign(await startNatsWithConfig(config, { port }), { name: 'nats', config, storeDir })]
  }
  // Ports chosen before: each server's routes name the others'.
  const ports = await Promise.all(CLUSTER.map(async () => ({ client: await freePort(), route: await freePort() })))
  const routes = ports.map((p) => `127.0.0.1:${p.route}`).join(',')
  const planned = CLUSTER.map((name, i) => ({ name, config: join(dir, `nats-server-${name}.conf`), storeDir: join(root, `jetstream-${name}`), ports: ports[i]! }))
  for (const s of planned) {
    await keeperBus(dir, [
      'server-config',
      ...['--server-name', s.name, '--port', String(s.ports.client), '--store-dir', s.storeDir],
      ...['--cluster-name', 'apiary', '--cluster-listen', `127.0.0.1:${s.ports.route}`, '--routes', routes],
    ])
  }
  const failures: string[] = []
  for (let attempt = 1; attempt <= CLUSTER_ATTEMPTS; attempt++) {
    const started = await Promise.allSettled(
      planned.map(async (s) => Object.assign(await startNatsWithConfig(s.config, { asConfigured: true, clustered: true }), { name: s.name, config: s.config, storeDir: s.storeDir, routePort: s.ports.route })),
    )
    const up = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
    if (up.length === planned.length) return up
    // None left running: the servers that did see a leader are stopped with the rest, and the
    // three start again on empty stores (nats-server 2.9 now and then forms no metadata group
    // from three fresh servers started together on a loaded machine).
    await Promise.all(up.map((s) => s.stop()))
    await Promise.all(planned.map((s) => rm(s.storeDir, { recursive: true, force: true })))
    failures.push(...started.flatMap((r) => (r.status === 'rejected' ? [`attempt ${attempt}: ${(r.reason as Error).message}`] : [])))
    process.stderr.write(`secure bus: the three-server cluster formed no JetStream metadata group (attempt ${attempt} of ${CLUSTER_ATTEMPTS})\n`)
  }
  throw new Error(`the three-server cluster did not form in ${CLUSTER_ATTEMPTS} attempts:\n${failures.join('\n')}`)
}

/**
 * The documented secure setup, made with apiary's own commands: `keeper bus init`, one
 * credential per identity, and real nats-servers running the configuration `keeper bus`
 * wrote (decentralized JWT auth, least privilege per identity, JetStream with its store in
 * `root`): one server, or with `cluster` three in a JetStream cluster on loopback ports.
 */
export async function startSecureBus(root: string, identities: readonly Identity[], opts: SecureBusOptions = {}): Promise<SecureBus> {
  const dir = join(root, 'bus')
  await keeperBus(dir, ['init'])
  const creds = (who: Identity) => join(dir, 'creds', who.role === 'queen' ? `queen.${who.id}.creds` : `${who.role}.${who.region}.${who.id}.creds`)
  const issue = async (who: Identity) => {
    await keeperBus(dir, ['issue', ...identityFlags(who)])
    return creds(who)
  }
  for (const who of identities) await issue(who)
  const servers = await startServers(root, dir, opts.cluster === true)
  const first = servers[0]!
  return {
    dir,
    nats: first,
    servers,
    url: servers.map((s) => s.url).join(','),
    creds,
    issue,
    async revoke(who) {
      // Pushed to the running servers (in a cluster, through one of them to all, each
      // answering): only the revoked identity's connections drop.
      const via = servers.find((s) => s.running) ?? first
      await keeperBus(dir, ['revoke', ...identityFlags(who), '--server', via.url])
    },
    stop: async () => void (await Promise.all(servers.map((s) => s.stop()))),
  }
}
