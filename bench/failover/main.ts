/**
 * Failover benchmark: how long apiary is without a leader, and a share without its hive, after
 * one dies (SIGKILL), beside the floor its own settings set, in the same run.
 *
 *   pnpm bench:failover [--rounds R] [--lease-ttls 6s,2s] [--heartbeats 5s,1s] [--workers W]
 *
 * Topology, every part its own OS process started from its bin: one nats-server with JetStream,
 * two queens (a leader and a standby holding its signing key), two hives of region `bench` and
 * W agent workers, each with its journal on disk.
 *
 * - Leader: with a job running, the leader is killed; timed from the kill to the standby saying
 *   it leads and to the standby answering a submit with 201 (test/e2e/chaos/measure.ts: a plain
 *   POST every 25 ms). Floor: the lease's TTL, after which the dead leader's lease runs out (its
 *   last renewal was up to a third of it before the kill; the standby tries every third).
 * - Share: the hive holding a running job's share is killed; timed from the kill to the job's
 *   `job.region` event naming the other hive, as a client following the job reads it. Floor:
 *   three heartbeats, after which the queen judges a silent hive gone.
 * Each killed daemon is started again (on its state dir and port) before the next round, and
 * every struck job must still finish with every node ok.
 */
import { copyFile, chmod, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { EventOf, JobEvent, JobRequestInput } from '@apiary/shared'
import { parseDuration, readSecretFile } from '@apiary/shared/runtime'
import { createJobClient, type JobClient } from '@apiary/shared/client'
import { freePort, type NatsServer, startNats } from '../../test/harness/nats.ts'
import { tempDir } from '../../test/harness/temp.ts'
import { EventTape, measureLeaderFailover, measureShareHandOver } from '../../test/e2e/chaos/measure.ts'
import { benchArgs, optionsOrExit, wholeNumber } from '../lib/args.ts'
import { type RoleProc, startRole } from '../lib/roles.ts'
import { type BenchContext, progress, runBench } from '../lib/run.ts'
import { fmt, median, table } from '../lib/stats.ts'
import { waitUntil } from '../lib/wait.ts'

const REGION = 'bench'
const LABEL = 'role=failover'
/** The queen judges a hive gone after this many heartbeats without one (presence.ts, MISSED_BEATS). */
const MISSED_BEATS = 3
/** The default lease must be taken over within this (DESIGN.md: "within seconds"; the chaos test's bound). */
const GOAL_LEADER_MS = 10_000
const START_MS = 60_000

const USAGE = `bench:failover — apiary's failover after a queen or a hive is killed, beside the floor its settings set

usage: pnpm bench:failover [--rounds R] [--lease-ttls LIST] [--heartbeats LIST] [--workers W] [--time-limit S]

  --rounds R          kills of each kind for each setting, default 3
  --lease-ttls LIST   the queens' --lease-ttl values to measure, comma-separated, default 6s,2s (6s is the default)
  --heartbeats LIST   the hives' --heartbeat values to measure, comma-separated, default 5s,1s (5s is the default)
  --workers W         agent workers, default 4
  --time-limit S      abort with an error after S seconds in all, default 900
  -h, --help          show this help

Prints, for each setting, the median and range over R kills of: leader killed → the standby
leads, → the standby accepts a job (goal at the default lease: < ${GOAL_LEADER_MS / 1000} s); hive killed →
the job's job.region naming the other hive; each beside its floor (the lease TTL; ${MISSED_BEATS} heartbeats)
and the ratio to it, and whether every struck job still finished with every node ok.
`

interface Opts {
  rounds: number
  leaseTtls: string[]
  heartbeats: string[]
  workers: number
  timeLimitS: number
}

function durations(v: string, flag: string): string[] {
  const list = v.split(',').map((s) => s.trim()).filter(Boolean)
  if (list.length === 0) throw new Error(`${flag}: give at least one duration`)
  for (const d of list) parseDuration(d, flag)
  return list
}

function parseOpts(argv: string[]): Opts | 'help' {
  const { values } = parseArgs({
    args: benchArgs(argv),
    options: {
      rounds: { type: 'string', default: '3' },
      'lease-ttls': { type: 'string', default: '6s,2s' },
      heartbeats: { type: 'string', default: '5s,1s' },
      workers: { type: 'string', default: '4' },
      'time-limit': { type: 'string', default: '900' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  })
  if (values.help) return 'help'
  return {
    rounds: wholeNumber(values.rounds, '--rounds', 1, 50),
    leaseTtls: durations(values['lease-ttls'], '--lease-ttls'),
    heartbeats: durations(values.heartbeats, '--heartbeats'),
    workers: wholeNumber(values.workers, '--workers', 1, 32),
    timeLimitS: wholeNumber(values['time-limit'], '--time-limit', 30, 24 * 3600),
  }
}

/** A daemon that is started again with the same arguments after it was killed. */
class Daemon {
  #proc: RoleProc | undefined

  constructor(
    readonly name: string,
    private readonly bin: string,
    private readonly args: () => string[],
    private readonly ready: RegExp,
    private readonly ctx: BenchContext,
  ) {
    ctx.teardown.add(name, () => this.#proc?.stop(5000) ?? Promise.resolve())
  }

  get proc(): RoleProc {
    if (!this.#proc) throw new Error(`${this.name} was never started`)
    return this.#proc
  }

  get running(): boolean {
    const c = this.#proc?.child
    return c !== undefined && c.exitCode === null && c.signalCode === null
  }

  async start(): Promise<void> {
    const proc = startRole(this.name, this.bin, this.args(), { APIARY_LOG_LEVEL: 'info' })
    this.#proc = proc
    this.ctx.pids.add(proc.pid)
    await proc.waitForLine(this.ready, START_MS, this.ctx.signal)
  }

  /** SIGKILL; resolved once it exited. */
  async kill(): Promise<void> {
    const p = this.#proc
    if (!p || !this.running) return
    p.child.kill('SIGKILL')
    await p.exited
    this.ctx.pids.delete(p.pid)
  }

  /** SIGTERM, as an operator stops it. */
  async stop(): Promise<void> {
    await this.#proc?.stop(5000)
  }
}

class Queen extends Daemon {
  constructor(
    name: string,
    args: () => string[],
    readonly url: string,
    readonly stateDir: string,
    ctx: BenchContext,
  ) {
    super(name, 'apiary-queen', args, /queen listening/, ctx)
  }

  async readyz(): Promise<{ ready: boolean; role: 'leader' | 'standby' } | undefined> {
    if (!this.running) return undefined
    try {
      const res = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2000) })
      return (await res.json()) as { ready: boolean; role: 'leader' | 'standby' }
    } catch {
      return undefined
    }
  }
}

/** The bus, two queens, two hives and the workers, for one lease TTL and one hive heartbeat. */
interface Cluster {
  nats: NatsServer
  queens: [Queen, Queen]
  hives: Daemon[]
  workers: Daemon[]
  nodes: string[]
  token: string
  client: JobClient
  /** Starts the hives again with another heartbeat. */
  setHeartbeat(hb: string): Promise<void>
  stop(): Promise<void>
}

async function startCluster(leaseTtl: string, heartbeat: string, o: Opts, ctx: BenchContext): Promise<Cluster> {
  const dir = await tempDir('bench-failover')
  ctx.teardown.add('state dir', () => dir.remove())
  progress(`starting nats-server, 2 queens (lease ${leaseTtl}), 2 hives (heartbeat ${heartbeat}), ${o.workers} workers`)
  const nats = await startNats()
  ctx.teardown.add('nats-server', () => nats.stop())
  const tokenFile = join(dir.path, 'token')
  const queens = (await Promise.all(
    [1, 2].map(async (n) => {
      const port = await freePort()
      const stateDir = join(dir.path, `queen-${n}`)
      const args = ['--nats', nats.url, '--insecure-bus', '--queen-id', `queen-${n}`, '--port', String(port), '--state-dir', stateDir, '--token-file', tokenFile, '--lease-ttl', leaseTtl]
      return new Queen(`queen-${n}`, () => args, `http://127.0.0.1:${port}`, stateDir, ctx)
    }),
  )) as [Queen, Queen]
  await queens[0].start()
  await queens[0].proc.waitForLine(/"msg":"leading"/, START_MS, ctx.signal)
  // The standby signs with the first queen's key: work it signs must pass the key hives and workers pin.
  await mkdir(queens[1].stateDir, { recursive: true, mode: 0o700 })
  for (const f of ['signing.key', 'signing.pub']) {
    await copyFile(join(queens[0].stateDir, f), join(queens[1].stateDir, f))
    await chmod(join(queens[1].stateDir, f), 0o600)
  }
  await queens[1].start()
  const pub = join(queens[0].stateDir, 'signing.pub')
  let hb = heartbeat
  const common = () => ['--nats', nats.url, '--insecure-bus', '--queen-key', pub, '--region', REGION]
  const hives = [1, 2].map((n) => new Daemon(`hive-${n}`, 'apiary-hive', () => [...common(), '--heartbeat', hb, '--id', `hive-${REGION}-${n}`], /hive ready/, ctx))
  const nodes = Array.from({ length: o.workers }, (_, i) => `failover-${i + 1}`)
  const workers = nodes.map((id) => new Daemon(id, 'apiary-worker', () => [...common(), '--node-id', id, '--state-dir', join(dir.path, id), '--label', LABEL], /worker ready/, ctx))
  await Promise.all([...hives, ...workers].map((d) => d.start()))
  const token = await readSecretFile(tokenFile, 'token')
  const client = createJobClient({ url: queens.map((q) => q.url), token })
  let closing: Promise<void> | undefined
  const closeClient = () => (closing ??= client.close())
  ctx.teardown.add('job client', closeClient)
  const cluster: Cluster = {
    nats,
    queens,
    hives,
    workers,
    nodes,
    token,
    client,
    async setHeartbeat(next) {
      hb = next
      for (const h of hives) await h.stop()
      await Promise.all(hives.map((h) => h.start()))
    },
    async stop() {
      await closeClient()
      await Promise.all([...queens, ...hives, ...workers].map((d) => d.stop()))
      await nats.stop()
      await dir.remove()
    },
  }
  await ready(cluster, ctx)
  return cluster
}

/** Resolved once one queen leads, the other is a ready standby, and the leader sees every worker online. */
async function ready(c: Cluster, ctx: BenchContext): Promise<Queen> {
  let leader: Queen | undefined
  await waitUntil(
    async () => {
      const roles = await Promise.all(c.queens.map((q) => q.readyz()))
      const at = roles.findIndex((r) => r?.ready === true && r.role === 'leader')
      const other = roles[1 - at]
      if (at < 0 || other?.ready !== true || other.role !== 'standby') return false
      leader = c.queens[at]
      const online = (await c.client.nodes()).filter((n) => n.online && c.nodes.includes(n.id)).length
      return online === c.nodes.length
    },
    START_MS,
    100,
    ctx.signal,
    () => 'a leader, a ready standby and every worker online',
  )
  return leader!
}

/** A job that takes a while and harms nothing: each node sleeps, `concurrency` at a time. */
function sleepJob(sleepS: number, concurrency: number): JobRequestInput {
  return { operation: { type: 'exec', shell: true, command: `sleep ${sleepS}` }, targets: LABEL, rollout: { concurrency, timeoutMs: 60_000 } }
}

const PING: JobRequestInput = { operation: { type: 'ping' }, targets: LABEL }

const isStarted = (ev: JobEvent): ev is EventOf<'node.started'> => ev.kind === 'node.started'

/** Whether a struck job ended with every node ok; why not otherwise. */
async function endedOk(tape: EventTape, nodes: number): Promise<string | undefined> {
  try {
    const events = await tape.done
    const fin = events.at(-1)
    if (fin?.kind !== 'job.finished') return 'no job.finished'
    return fin.counts.ok === nodes ? undefined : `ended ${fin.state}: ${JSON.stringify(fin.counts)}`
  } catch (err) {
    return (err as Error).message
  }
}

interface Sample {
  ms: number
  /** Leader rounds: kill → the standby's `leading` line. */
  leadsMs?: number
  problem?: string
}

async function leaderRound(c: Cluster, ctx: BenchContext): Promise<Sample> {
  const leader = await ready(c, ctx)
  const standby = c.queens.find((q) => q !== leader)!
  const { jobId } = await c.client.submit(sleepJob(1, 2))
  const tape = EventTape.follow(c.client, jobId, 120_000)
  await tape.next(isStarted, 'a node to start')
  let leadsAt = Number.NaN
  const leads = standby.proc.waitForLine(/"msg":"leading"/, 60_000, ctx.signal).then(() => (leadsAt = Date.now()))
  const killedAt = Date.now()
  const took = await measureLeaderFailover(() => leader.kill(), [standby.url], c.token, PING)
  await leads
  const problem = (await endedOk(tape, c.nodes.length)) ?? (await endedOk(EventTape.follow(c.client, took.jobId), c.nodes.length))
  await leader.start()
  return { ms: took.ms, leadsMs: leadsAt - killedAt, ...(problem ? { problem } : {}) }
}

async function hiveRound(c: Cluster, ctx: BenchContext, hbMs: number): Promise<Sample> {
  await ready(c, ctx)
  // One node at a time, each a few heartbeats long: the share is still running when its hive is judged gone.
  const { jobId } = await c.client.submit(sleepJob(Math.max(1, Math.ceil((hbMs * 2) / 1000)), 1))
  const tape = EventTape.follow(c.client, jobId, 300_000)
  const region = await tape.next((ev): ev is EventOf<'job.region'> => ev.kind === 'job.region', 'the share handed to a hive')
  const holder = c.hives.find((h) => `hive-${REGION}-${h.name.split('-')[1]}` === region.ev.hive)
  if (!holder) throw new Error(`the share went to ${region.ev.hive ?? 'no hive'}, not one of the bench's`)
  await tape.next(isStarted, 'a node to start')
  const handOver = await measureShareHandOver(tape, () => holder.kill(), REGION, region.ev.hive!, hbMs * MISSED_BEATS * 4 + 30_000)
  const problem = await endedOk(tape, c.nodes.length)
  await holder.start()
  return { ms: handOver.ms, ...(problem ? { problem } : {}) }
}

interface Row {
  what: string
  setting: string
  floorMs: number
  samples: Sample[]
  /** Which figure of a sample this row shows. */
  pick: (s: Sample) => number
  goalMs?: number
}

async function run(o: Opts, ctx: BenchContext): Promise<Row[]> {
  const rows: Row[] = []
  const hb0 = o.heartbeats[0]!
  for (const [i, ttl] of o.leaseTtls.entries()) {
    const c = await startCluster(ttl, hb0, o, ctx)
    const samples: Sample[] = []
    for (let r = 1; r <= o.rounds; r++) {
      const s = await leaderRound(c, ctx)
      samples.push(s)
      progress(`  lease ${ttl}, round ${r}/${o.rounds}: leads after ${fmt(s.leadsMs ?? NaN, 0)} ms, accepts a job after ${s.ms} ms${s.problem ? ` PROBLEM: ${s.problem}` : ''}`)
    }
    const floorMs = parseDuration(ttl, '--lease-ttls')
    rows.push({ what: 'leader killed → standby leads', setting: `--lease-ttl ${ttl}`, floorMs, samples, pick: (s) => s.leadsMs ?? NaN })
    rows.push({ what: 'leader killed → job accepted', setting: `--lease-ttl ${ttl}`, floorMs, samples, pick: (s) => s.ms, ...(ttl === '6s' ? { goalMs: GOAL_LEADER_MS } : {}) })
    if (i < o.leaseTtls.length - 1) {
      await c.stop()
      continue
    }
    for (const [j, hb] of o.heartbeats.entries()) {
      if (j > 0) {
        progress(`starting the hives again with --heartbeat ${hb}`)
        await c.setHeartbeat(hb)
      }
      const hbMs = parseDuration(hb, '--heartbeats')
      const hs: Sample[] = []
      for (let r = 1; r <= o.rounds; r++) {
        const s = await hiveRound(c, ctx, hbMs)
        hs.push(s)
        progress(`  heartbeat ${hb}, round ${r}/${o.rounds}: share handed over after ${s.ms} ms${s.problem ? ` PROBLEM: ${s.problem}` : ''}`)
      }
      rows.push({ what: 'hive killed → job.region of the other', setting: `--heartbeat ${hb}`, floorMs: hbMs * MISSED_BEATS, samples: hs, pick: (s) => s.ms })
    }
  }
  return rows
}

function report(o: Opts, rows: Row[]): string {
  const lines = ['', `apiary failover benchmark: SIGKILL, ${o.rounds} round(s) per setting; nats-server with JetStream, 2 queens, 2 hives, ${o.workers} workers, each its own process`, '']
  lines.push(
    table([
      ['what', 'setting', 'median ms', 'min–max ms', 'floor ms', 'median / floor', 'goal', 'struck jobs all ok'],
      ...rows.map((r) => {
        const v = r.samples.map(r.pick).filter(Number.isFinite)
        const m = median(v)
        const bad = r.samples.filter((s) => s.problem).length
        return [
          r.what,
          r.setting,
          fmt(m, 0),
          v.length ? `${fmt(Math.min(...v), 0)}–${fmt(Math.max(...v), 0)}` : 'n/a',
          fmt(r.floorMs, 0),
          `${fmt(m / r.floorMs, 2)}x`,
          r.goalMs === undefined ? '—' : `< ${r.goalMs} ms: ${m < r.goalMs ? 'PASS' : 'MISS'}`,
          `${r.samples.length - bad} of ${r.samples.length}`,
        ]
      }),
    ]),
  )
  lines.push('')
  lines.push(
    "floors: the lease runs out its TTL after the dead leader's last renewal, which came up to a third of the TTL before the kill, and the standby tries every third: " +
      `expect ⅔ to 4⁄3 of the TTL; the queen judges a hive gone after ${MISSED_BEATS} heartbeats without one`,
  )
  const problems = [...new Set(rows.flatMap((r) => r.samples.flatMap((s) => (s.problem ? [`${r.setting}: ${s.problem}`] : []))))]
  for (const p of problems) lines.push(`PROBLEM: ${p}`)
  return lines.join('\n')
}

async function main(): Promise<number> {
  const o = optionsOrExit('bench:failover', USAGE, parseOpts)
  if (typeof o === 'number') return o
  const { result } = await runBench('bench:failover', o.timeLimitS, (ctx) => run(o, ctx))
  if (result) process.stdout.write(`${report(o, result)}\n`)
  return result && !result.some((r) => r.samples.some((s) => s.problem)) ? 0 : 1
}

process.exit(await main())
