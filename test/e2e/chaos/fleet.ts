import { chmod, copyFile, mkdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node'
import { readFile } from 'node:fs/promises'
import { type Identity, type JobEvent, NodeInfo, subjects } from '@apiary/shared'
import { createNatsBus } from '@apiary/shared/nats'
import { readSecretFile, silentLogger } from '@apiary/shared/runtime'
import { createJobClient, type JobClient } from '@apiary/shared/client'
import { freePort, type Proc, type SecureBus, startBin, startSecureBus, type TempDir, tempDir, waitUntil } from '../../harness/index.ts'

/** The region every hive and worker of the fleet serves. */
export const REGION = 'eu'
/** The label every worker carries: a job's targets. */
export const TARGETS = 'role=chaos'
/** Heartbeats of hives and workers: a dead one is judged gone within a second. */
const HEARTBEAT = '300ms'
/** A dead leader's lease runs out this long after its last renewal; then a standby leads. */
const LEASE_TTL = '2s'
/** How long one daemon may take to say it is ready (a cold start runs its sources through tsx). */
const START_MS = 30_000

const queenId = (n: number) => `queen-${n}`
const hiveId = (n: number) => `hive-${REGION}-${n}`
const workerId = (n: number) => `w-${n}`
const QUEEN_COUNT = 2
const HIVE_COUNT = 2
const WORKER_COUNT = 8
/** A queen identity the tests use to ask JetStream where a stream's leader is, never a daemon. */
const PROBE: Identity = { role: 'queen', id: 'chaos-probe' }

/**
 * One daemon of the fleet as its own OS process, with what it runs with, so a killed one comes
 * back as it was. Each run's output is kept: a killed process's last words stay readable.
 */
export class Daemon {
  #proc: Proc | undefined
  readonly #past: string[] = []

  constructor(
    readonly name: string,
    private readonly bin: string,
    private readonly args: readonly string[],
    private readonly ready: RegExp,
  ) {}

  /** Whether it was ever started (a standby the tests have not asked for yet was not). */
  get started(): boolean {
    return this.#proc !== undefined
  }

  get running(): boolean {
    const c = this.#proc?.child
    return c !== undefined && c.exitCode === null && c.signalCode === null
  }

  /** Starts it (again), resolved once it says it is ready. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.name} runs already`)
    if (this.#proc) this.#past.push(this.#proc.output())
    const proc = startBin(this.bin, [...this.args])
    this.#proc = proc
    try {
      await proc.waitFor(this.ready, START_MS)
    } catch (err) {
      throw new Error(`${this.name} did not start: ${(err as Error).message}\n${proc.output()}`, { cause: err })
    }
  }

  /** SIGKILL: it dies at once, nothing flushed, nothing said; the kernel closes its sockets. Resolved once it exited. */
  async kill(): Promise<void> {
    const p = this.#proc
    if (!p || !this.running) return
    p.child.kill('SIGKILL')
    await p.exited
  }

  /** SIGSTOP, then SIGCONT: alive but frozen (a long GC or VM pause, a stopped container) while it lasts. */
  pause(): void {
    if (!this.running) throw new Error(`${this.name} is not running`)
    this.#proc!.child.kill('SIGSTOP')
  }

  resume(): void {
    if (!this.running) throw new Error(`${this.name} is not running`)
    this.#proc!.child.kill('SIGCONT')
  }

  /** SIGTERM (SIGKILL after a grace): how an operator stops it. */
  async stop(): Promise<void> {
    await this.#proc?.stop(3000)
  }

  /**
   * SIGTERM, as an orchestrator sends it, and how it exited; SIGKILL if it has not exited
   * within `withinMs` (then the signal says so and the code is null).
   */
  async terminate(withinMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const p = this.#proc
    if (!p || !this.running) throw new Error(`${this.name} is not running`)
    p.child.kill('SIGTERM')
    const timer = setTimeout(() => p.child.kill('SIGKILL'), withinMs)
    try {
      return await p.exited
    } finally {
      clearTimeout(timer)
    }
  }

  /** The first line of this run's output, printed or to come, that matches `re`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string> {
    if (!this.#proc) throw new Error(`${this.name} was never started`)
    return this.#proc.waitFor(re, timeoutMs)
  }

  /** Everything it printed, every run, oldest first. */
  output(): string {
    return [...this.#past, this.#proc?.output() ?? ''].join(`\n----- ${this.name} started again -----\n`)
  }
}

/** A queen: a daemon on a fixed port (a restart comes back on the same URL) with its own state dir. */
export class QueenDaemon extends Daemon {
  constructor(
    name: string,
    args: readonly string[],
    readonly url: string,
    readonly stateDir: string,
  ) {
    super(name, 'apiary-queen', args, /queen listening/)
  }

  /** What its /readyz says, or undefined while it does not answer. */
  async readyz(): Promise<{ ready: boolean; role: 'leader' | 'standby' } | undefined> {
    if (!this.running) return undefined
    try {
      const res = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2000) })
      return (await res.json()) as { ready: boolean; role: 'leader' | 'standby' }
    } catch {
      return undefined
    }
  }

  /** Resolves once it says it leads (its log line, not a poll). */
  leading(timeoutMs: number): Promise<string> {
    return this.waitFor(/"msg":"leading"/, timeoutMs)
  }
}

export interface FleetOptions {
  /** Three nats-servers in a JetStream cluster (streams R3) instead of one. */
  cluster?: boolean
  /** More flags for a daemon (its metrics port, its drain grace), given the fleet's directory. */
  extraArgs?: (who: Identity, dir: string) => Promise<string[]>
}

/**
 * apiary as it runs in production, every role its own OS process on the authenticated
 * JetStream bus (`startSecureBus`): up to two queens (the second a standby with the first's
 * signing key), two hives of one region and eight workers, each with its own credential,
 * heartbeats of 300 ms and a lease of 2 s, so that a strike and its recovery take seconds.
 * `heal()` brings back whatever a strike killed.
 */
export class Fleet {
  readonly queens: QueenDaemon[]
  readonly hives: Daemon[]
  readonly workers: Daemon[]
  readonly #clients: JobClient[] = []
  /** Jobs the current test ran, with the events a client read of each: a failure's report shows them beside what the bus stored. */
  readonly #jobs = new Map<string, () => readonly JobEvent[]>()

  private constructor(
    readonly dir: TempDir,
    readonly bus: SecureBus,
    readonly token: string,
    queens: QueenDaemon[],
    hives: Daemon[],
    workers: Daemon[],
  ) {
    this.queens = queens
    this.hives = hives
    this.workers = workers
  }

  /** The ids of every worker: a job's targets. */
  get nodes(): string[] {
    return this.workers.map((w) => w.name)
  }

  get daemons(): Daemon[] {
    return [...this.queens, ...this.hives, ...this.workers]
  }

  /** The bus, the first queen (it makes the signing key every hive and worker pins), the hives and workers; resolved once the queen leads and sees all eight workers. */
  static async start(opts: FleetOptions = {}): Promise<Fleet> {
    const dir = await tempDir('chaos')
    let bus: SecureBus | undefined
    try {
      const queens: Identity[] = Array.from({ length: QUEEN_COUNT }, (_, i) => ({ role: 'queen', id: queenId(i + 1) }))
      const hives: Identity[] = Array.from({ length: HIVE_COUNT }, (_, i) => ({ role: 'hive', region: REGION, id: hiveId(i + 1) }))
      const workers: Identity[] = Array.from({ length: WORKER_COUNT }, (_, i) => ({ role: 'worker', region: REGION, id: workerId(i + 1) }))
      bus = await startSecureBus(dir.path, [...queens, PROBE, ...hives, ...workers], { cluster: opts.cluster === true })
      const b = bus
      const tokenFile = join(dir.path, 'token')
      const extra = (who: Identity) => opts.extraArgs?.(who, dir.path) ?? Promise.resolve([])
      const queenDaemons = await Promise.all(
        queens.map(async (q) => {
          const port = await freePort()
          const stateDir = join(dir.path, q.id)
          const args = ['--nats', b.url, '--nats-creds', b.creds(q), '--queen-id', q.id, '--port', String(port), '--state-dir', stateDir, '--token-file', tokenFile, '--lease-ttl', LEASE_TTL]
          return new QueenDaemon(q.id, [...args, ...(opts.cluster ? ['--replicas', '3'] : []), ...(await extra(q))], `http://127.0.0.1:${port}`, stateDir)
        }),
      )
      const first = queenDaemons[0]!
      await first.start()
      await first.leading(START_MS)
      const pub = join(first.stateDir, 'signing.pub')
      const common = (who: Identity) => ['--nats', b.url, '--nats-creds', b.creds(who), '--queen-key', pub, '--region', REGION, '--heartbeat', HEARTBEAT]
      const hiveDaemons = await Promise.all(hives.map(async (h) => new Daemon(h.id, 'apiary-hive', [...common(h), '--id', h.id, ...(await extra(h))], /hive ready/)))
      const workerDaemons = await Promise.all(
        workers.map(
          async (w) => new Daemon(w.id, 'apiary-worker', [...common(w), '--node-id', w.id, '--state-dir', join(dir.path, w.id), '--label', TARGETS, ...(await extra(w))], /worker ready/),
        ),
      )
      await Promise.all([...hiveDaemons, ...workerDaemons].map((d) => d.start()))
      const fleet = new Fleet(dir, b, await readSecretFile(tokenFile, 'token'), queenDaemons, hiveDaemons, workerDaemons)
      await fleet.ready()
      return fleet
    } catch (err) {
      await bus?.stop()
      await dir.remove()
      throw err
    }
  }

  /**
   * Starts a standby queen: its own state dir, holding a copy of the first queen's signing key
   * (work it signs must pass the key hives and workers pin). Resolved once it is a ready standby.
   */
  async startStandby(q: QueenDaemon): Promise<void> {
    const from = this.queens[0]!.stateDir
    if (q.stateDir === from) throw new Error('the first queen is no standby')
    await mkdir(q.stateDir, { recursive: true, mode: 0o700 })
    for (const f of ['signing.key', 'signing.pub']) {
      await copyFile(join(from, f), join(q.stateDir, f))
      await chmod(join(q.stateDir, f), 0o600)
    }
    await q.start()
    await waitUntil(async () => {
      const r = await q.readyz()
      return r?.ready === true && r.role === 'standby'
    }, `${q.name} to be a ready standby`, 15_000)
  }

  /** The queens started and running. */
  runningQueens(): QueenDaemon[] {
    return this.queens.filter((q) => q.running)
  }

  /** The queen that leads, once one does (after a failover, within the lease's TTL and a catch-up). */
  async leader(timeoutMs = 15_000): Promise<QueenDaemon> {
    let found: QueenDaemon | undefined
    await waitUntil(async () => {
      for (const q of this.runningQueens()) {
        const r = await q.readyz()
        if (r?.ready === true && r.role === 'leader') found = q
      }
      return found !== undefined
    }, 'a queen to lead', timeoutMs)
    return found!
  }

  /**
   * Asks every running queen's /readyz who leads, every 25 ms, until `stop`; resolves with the
   * spans of time when more than one said it did, as "queen-1+queen-2 for 2100 ms" (a sample:
   * a shorter overlap can slip between two).
   */
  watchLeaders(): { stop(): Promise<string[]> } {
    const spans: string[] = []
    let open: { from: number; leaders: string } | undefined
    const close = (now: number) => {
      if (open) spans.push(`${open.leaders} for ${now - open.from} ms`)
      open = undefined
    }
    let on = true
    const loop = (async () => {
      while (on) {
        const said = await Promise.all(this.runningQueens().map(async (q) => ((await q.readyz())?.role === 'leader' ? q.name : undefined)))
        const leaders = said.filter((n) => n !== undefined)
        const key = leaders.length > 1 ? leaders.join('+') : undefined
        const now = Date.now()
        if (key !== open?.leaders) {
          close(now)
          if (key !== undefined) open = { from: now, leaders: key }
        }
        await new Promise((resolve) => setTimeout(resolve, 25))
      }
      close(Date.now())
    })()
    return {
      async stop() {
        on = false
        await loop
        return spans
      },
    }
  }

  /** A job client given these queens' URLs (every started queen's by default); closed by `closeClients`. */
  client(queens: readonly QueenDaemon[] = this.queens.filter((q) => q.started)): JobClient {
    const c = createJobClient({ url: queens.map((q) => q.url), token: this.token })
    this.#clients.push(c)
    return c
  }

  async closeClients(): Promise<void> {
    await Promise.all(this.#clients.splice(0).map((c) => c.close()))
  }

  /** Resolved once a queen leads and sees every worker online, and every hive heartbeats. */
  async ready(): Promise<void> {
    await this.hiveHeartbeats()
    const leader = await this.leader()
    const nodes = async () => {
      const res = await fetch(`${leader.url}/v1/nodes`, { headers: { authorization: `Bearer ${this.token}` }, signal: AbortSignal.timeout(2000) })
      const body = (await res.json()) as { nodes: unknown[] }
      return body.nodes.map((n) => NodeInfo.parse(n))
    }
    await waitUntil(async () => (await nodes()).filter((n) => n.online && this.nodes.includes(n.id)).length === this.nodes.length, `every worker to be online at ${leader.name}`, 15_000)
  }

  /** Brings back every server and daemon a strike killed (on its port, store and state dir), then waits until the fleet is ready. */
  async heal(): Promise<void> {
    for (const s of this.bus.servers) if (!s.running) await s.restart()
    await Promise.all(this.daemons.filter((d) => d.started && !d.running).map((d) => d.start()))
    await this.ready()
  }

  /** A connection of the tests' own, with a queen's credential: to ask JetStream and hear heartbeats as a queen does. */
  async #probe(): Promise<NatsConnection> {
    return connect({
      servers: this.bus.servers.filter((s) => s.running).map((s) => s.url),
      authenticator: credsAuthenticator(await readFile(this.bus.creds(PROBE))),
      inboxPrefix: subjects.inboxPrefix('queen', PROBE.id),
      reconnect: false,
    })
  }

  /** Resolves once each hive was heard heartbeating on the bus (as the queens hear it): a hive just started is not taken for one that went quiet. */
  async hiveHeartbeats(): Promise<void> {
    const nc = await this.#probe()
    try {
      await Promise.all(
        this.hives.map(async (h) => {
          const sub = nc.subscribe(subjects.heartbeat('hive', REGION, h.name), { max: 1, timeout: 10_000 })
          for await (const _ of sub) break
        }),
      )
    } finally {
      await nc.close()
    }
  }

  /** The server name of a stream's leader (the server its writes go to), as JetStream says. */
  async streamLeader(stream: string): Promise<string> {
    const nc = await this.#probe()
    try {
      const info = (await nc.request(`$JS.API.STREAM.INFO.${stream}`, '', { timeout: 5000 })).json<{ cluster?: { leader?: string }; error?: { description: string } }>()
      const leader = info.cluster?.leader
      if (!leader) throw new Error(`stream ${stream} names no leader: ${JSON.stringify(info)}`)
      return leader
    } finally {
      await nc.close()
    }
  }

  /** A new test: the jobs noted so far are not its. */
  forgetJobs(): void {
    this.#jobs.clear()
  }

  /** Notes a job a test runs, and how to get the events read of it so far. */
  noteJob(jobId: string, read: () => readonly JobEvent[]): void {
    this.#jobs.set(jobId, read)
  }

  /**
   * What the events stream holds of each noted job, one line per message: its stream sequence,
   * kind, node and state. Read over a bus of the tests' own, with a queen's credential.
   */
  async #stored(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>([...this.#jobs.keys()].map((j) => [j, []]))
    const bus = await createNatsBus({ url: this.bus.servers.filter((s) => s.running).map((s) => s.url).join(','), name: 'apiary-chaos-probe', log: silentLogger(), credsFile: this.bus.creds(PROBE), identity: PROBE })
    try {
      const reader = bus.durable.read(
        'events',
        (m) => {
          const ev = m.data as { jobId?: string; kind?: string; node?: string; state?: string }
          out.get(ev.jobId ?? '')?.push(`#${m.seq} ${m.subject} ${ev.kind ?? '?'} ${ev.node ?? ''} ${ev.state ?? ''}`.trimEnd())
        },
        { afterSeq: 0, follow: false, maxBytes: 1 << 20 },
      )
      await reader.done
    } finally {
      await bus.close()
    }
    return out
  }

  /**
   * Writes every daemon's and server's output, and for each job the current test noted the
   * events a client read and what the events stream stored, to a directory kept after the run,
   * for a failure's report; resolves with its path.
   */
  async dumpLogs(label: string): Promise<string> {
    const out = join(tmpdir(), `apiary-chaos-logs-${label.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 60)}-${Date.now()}`)
    await mkdir(out, { recursive: true })
    for (const d of this.daemons) if (d.started) await writeFile(join(out, `${d.name}.log`), d.output())
    for (const s of this.bus.servers) await writeFile(join(out, `nats-${s.name}.log`), s.output())
    for (const [jobId, read] of this.#jobs) await writeFile(join(out, `${jobId}.read.ndjson`), read().map((e) => `${JSON.stringify(e)}\n`).join(''))
    const stored = await Promise.race([this.#stored(), new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 10_000).unref())]).catch((err: unknown) => {
      console.log(`chaos: cannot read the events stream: ${(err as Error).message}`)
      return undefined
    })
    for (const [jobId, lines] of stored ?? []) await writeFile(join(out, `${jobId}.stored.txt`), lines.map((l) => `${l}\n`).join(''))
    return out
  }

  async stop(): Promise<void> {
    await this.closeClients()
    await Promise.all(this.daemons.map((d) => d.stop()))
    await this.bus.stop()
    await this.dir.remove()
  }
}
