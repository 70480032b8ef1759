import { readFile, writeFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { type SpawnedNats, spawnNats } from './nats.ts'
import { waitForLine } from './process.ts'

export interface ConfiguredNats {
  url: string
  port: number
  /** The pid of the process (a new one after `restart`). */
  readonly pid: number
  /** False once killed or stopped, until restarted. */
  readonly running: boolean
  /** SIGHUP, resolved once nats-server says it reloaded its config (rejected if it could not). */
  reload(): Promise<void>
  /** The server's log so far (since it last started). */
  output(): string
  /** The first line of its log, so far or to come, that matches `re`. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>
  /** SIGKILL: the process dies at once, nothing flushed, nothing said to its peers. Resolved once it exited. */
  kill(): Promise<void>
  /** Starts it again with the same config, port and store, resolved once it is ready (in a cluster: once it knows the metadata leader). */
  restart(): Promise<void>
  stop(): Promise<void>
}

export interface NatsConfigOptions {
  /** Listen here (loopback) rather than where the config says; by default, on a free loopback port. */
  port?: number
  /** Where the config names its own port (a cluster's server, whose peers route to it): the arguments override nothing. */
  asConfigured?: boolean
  /**
   * JetStream's store instead of the config's store_dir: two servers of one config must not
   * share one (nats-server 2.9 does not lock it, and refuses `-sd` beside a config's store_dir).
   * The server then runs a copy of the config with this store, made again on each reload.
   */
  storeDir?: string
  /** A JetStream cluster's server: ready once it says who the metadata leader is. */
  clustered?: boolean
}

/** How long a cluster's server may take to learn who leads its JetStream metadata (less than a second on loopback). */
const CLUSTER_READY_MS = 15_000

/**
 * Spawns `nats-server -c CONFIG` (operator mode, TLS, JetStream, whatever the file says) on a
 * free loopback port, which overrides the file's listen address, and resolves once it accepts
 * connections. Its log is read all along, so a chatty server never blocks on a full pipe.
 * `kill` and `restart` are for the chaos of a real outage: the same port and store come back.
 */
export async function startNatsWithConfig(configFile: string, opts: NatsConfigOptions = {}): Promise<ConfiguredNats> {
  const storeDir = opts.storeDir
  const derive = () => (storeDir === undefined ? Promise.resolve(configFile) : withStore(configFile, storeDir))
  const runs = await derive()
  let port = opts.port
  const argsFor = (free: number) => {
    if (!opts.asConfigured) port ??= free
    return ['-c', runs, ...(opts.asConfigured ? [] : ['-a', '127.0.0.1', '-p', String(port)]), '-m', '0']
  }
  const start = async (): Promise<SpawnedNats> => {
    const s = await spawnNats(argsFor)
    if (opts.clustered) await clusterReady(s)
    return s
  }
  let s = await start()
  if (opts.asConfigured) port = configuredPort(s.output())
  const fixedPort = port
  if (fixedPort === undefined) throw new Error(`nats-server -c ${configFile}: no client port`)
  const kill = async () => {
    const { child } = s
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill('SIGKILL')
    await exited
  }
  return {
    url: `nats://127.0.0.1:${fixedPort}`,
    port: fixedPort,
    get pid() {
      return s.child.pid!
    },
    get running() {
      return s.child.exitCode === null && s.child.signalCode === null
    },
    async reload() {
      await derive()
      const done = waitForLine(s.child, /Reloaded server configuration|Failed to reload|reload.*error/i, 10_000)
      s.child.kill('SIGHUP')
      const line = await done
      if (!/Reloaded server configuration/.test(line)) throw new Error(`nats-server could not reload ${configFile}: ${line}`)
    },
    output: () => s.output(),
    async waitForLog(re, timeoutMs = 10_000) {
      // Checked and listened for in one turn: no line can slip between the two.
      const seen = s.output().split('\n').find((l) => re.test(l))
      return seen ?? waitForLine(s.child, re, timeoutMs)
    },
    kill,
    async restart() {
      await kill()
      s = await start()
    },
    stop: () => s.stop(),
  }
}

/** A copy of `configFile` beside it whose JetStream store is `storeDir` (mode 0600, as the config). */
async function withStore(configFile: string, storeDir: string): Promise<string> {
  const text = await readFile(configFile, 'utf8')
  const store = /^(\s*store_dir: ).*$/m
  if (!store.test(text)) throw new Error(`${configFile} names no store_dir`)
  const copy = `${configFile}.${basename(storeDir)}.conf`
  await writeFile(copy, text.replace(store, `$1${JSON.stringify(storeDir)}`), { mode: 0o600 })
  return copy
}

/** The client port a server says it listens on. */
function configuredPort(log: string): number | undefined {
  const m = /Listening for client connections on [^\s]*:(\d+)/.exec(log)
  return m ? Number(m[1]) : undefined
}

/** Resolves once a cluster's server names the JetStream metadata leader (itself or a peer). */
async function clusterReady(s: SpawnedNats): Promise<void> {
  const leader = /JetStream cluster new metadata leader|Self is new JetStream cluster metadata leader/
  // Checked and listened for in one turn: no line can slip between the two.
  if (leader.test(s.output())) return
  try {
    await waitForLine(s.child, leader, CLUSTER_READY_MS)
  } catch (err) {
    await s.stop()
    throw new Error(`nats-server did not join its JetStream cluster: ${(err as Error).message}\n${s.output()}`, { cause: err })
  }
}
