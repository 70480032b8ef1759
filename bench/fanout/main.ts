/**
 * Fan-out benchmark: how long apiary takes to ping every node of a fleet, next to the floor
 * set by plain NATS request/reply over the same topology, in the same run.
 *
 *   pnpm bench:fanout [--nodes N] [--jobs J] [--procs P] [--before DIR [--pairs K]]
 *
 * Topology, every part its own OS process: one nats-server, one queen, one hive (region
 * `bench`), and N agent workers (the real `startWorker`, one NATS connection each) spread over
 * P worker-host processes. The raw baseline adds N plain NATS responders (one connection each)
 * in the same hosts and is measured first, with all 2N connections open, so both measurements
 * see the same server and the same number of live connections and heartbeats.
 *
 * With --before DIR (a worktree of an older commit, installed), the same benchmark runs there
 * and here in turn, and the report compares them: what a change costs per node, in wall time
 * and in the queen's CPU, each run beside its own raw baseline.
 */
import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { availableParallelism, cpus, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { errorMessage, subjects } from '@apiary/shared'
import type { JobClient } from '@apiary/shared/client'
import { startNats } from '../../test/harness/nats.ts'
import { tempDir } from '../../test/harness/temp.ts'
import { type Host, startHost } from './hosts.ts'
import { benchArgs, optionsOrExit, wholeNumber } from '../lib/args.ts'
import { byPair, cell, readTable, runBeforeAndNow, times, type Tree, type TreeRun } from '../lib/compare.ts'
import { cpuProfFlags, startQueenAndHive } from '../lib/daemons.ts'
import { cpuMs, findPid, type MemStatus, memStatus } from '../lib/procfs.ts'
import { type BenchContext, progress, runBench, started } from '../lib/run.ts'
import { fmt, median, percentile, table } from '../lib/stats.ts'
import { sleep, waitUntil } from '../lib/wait.ts'

const REGION = 'bench'
const RAW_PREFIX = 'bench.raw'
const HEARTBEAT_MS = 5000
const DEFAULT_WARMUP = 2
const JOB_TIMEOUT_MS = 30_000
/** One job or raw round may take this long before it counts as failed. */
const ROUND_LIMIT_MS = 90_000
/** Connections opened at once across all hosts: enough to start fast, few enough for the server. */
const CONNECT_PARALLELISM = 32
const GOAL_RATIO = 3
const GOAL_QUEEN_MB = 200
/** With --before: apiary's median may be at most this many times the older commit's. */
const GOAL_BEFORE_RATIO = 1.25

const USAGE = `bench:fanout — apiary's fan-out latency beside raw NATS request/reply, same run

usage: pnpm bench:fanout [--nodes N] [--jobs J] [--procs P] [--warmup W] [--time-limit S] [--profile DIR] [--no-tap]
                         [--before DIR [--pairs K]]

  --nodes N        agent workers (and raw responders), default 1000
  --jobs J         timed jobs (and raw rounds) after the warm-ups, default 20
  --procs P        child processes hosting the workers, default 4
  --warmup W       untimed warm-up jobs (and raw rounds) first, default ${DEFAULT_WARMUP}
  --time-limit S   abort with an error after S seconds in all, default 600
  --profile DIR    run queen, hive and worker hosts with --cpu-prof, writing .cpuprofile files to DIR
  --no-tap         do not listen to node events and job-log records on the bus (the breakdown
                   of a job's time goes); how the runs of --before are made, as the older
                   commit's bench does not listen either
  --before DIR     also run this benchmark in DIR (a worktree of an older commit, after
                   pnpm install there), in turn with this checkout, and compare the two
  --pairs K        with --before: K runs in each checkout, alternating which goes first, default 1
  -h, --help       show this help

Prints median and p99 (nearest rank) of the wall time of a ping job to all N nodes
(submit → job.finished on the SSE stream) and of a raw scatter-gather (one request to each of
N subjects, all in flight at once, until the N-th reply), their ratio, and the queen's and
hive's peak RSS (VmHWM), and the wall time and queen CPU of a job per node.
With --before, each run's report and then the two checkouts side by side: apiary's median
against the older commit's (goal ≤ ${GOAL_BEFORE_RATIO}×), the extra cost per node in wall time and queen
CPU, and each run's ratio to its own raw baseline (the check on the machine's drift).
`

interface Opts {
  nodes: number
  jobs: number
  procs: number
  warmup: number
  timeLimitS: number
  profileDir: string | undefined
  tap: boolean
  before: string | undefined
  pairs: number
}

function parseOpts(argv: string[]): Opts | 'help' {
  const { values } = parseArgs({
    args: benchArgs(argv),
    options: {
      nodes: { type: 'string', default: '1000' },
      jobs: { type: 'string', default: '20' },
      procs: { type: 'string', default: '4' },
      warmup: { type: 'string', default: String(DEFAULT_WARMUP) },
      'time-limit': { type: 'string', default: '600' },
      profile: { type: 'string' },
      'no-tap': { type: 'boolean', default: false },
      before: { type: 'string' },
      pairs: { type: 'string', default: '1' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  })
  if (values.help) return 'help'
  return {
    nodes: wholeNumber(values.nodes, '--nodes', 1, 99_999),
    jobs: wholeNumber(values.jobs, '--jobs', 1, 10_000),
    procs: wholeNumber(values.procs, '--procs', 1, 256),
    warmup: wholeNumber(values.warmup, '--warmup', 0, 1000),
    timeLimitS: wholeNumber(values['time-limit'], '--time-limit', 10, 24 * 3600),
    profileDir: values.profile === undefined ? undefined : resolve(values.profile),
    tap: !values['no-tap'],
    before: values.before === undefined ? undefined : resolve(values.before),
    pairs: wholeNumber(values.pairs, '--pairs', 1, 20),
  }
}


interface Round {
  ms: number
  ok: boolean
  /** Why it does not count, when !ok. */
  note: string
  /** An apiary job's node events as this process heard them on the bus: ms after the submit of the first and of the last. */
  heard?: { firstMs: number; lastMs: number; records?: number; bytes?: number }
}

/**
 * The times this process hears node events on the bus (a plain subscriber, as a hive is):
 * where a job's time goes, the workers' part (until the last event is out) and the queen's
 * (from there to job.finished on the stream). Cheap: nothing is decoded.
 */
function tapNodeEvents(nc: NatsConnection): { reset(): void; heard(t0: number): Round['heard'] } {
  let first: number | undefined
  let last: number | undefined
  let records = 0
  let bytes = 0
  nc.subscribe(subjects.nodeEventsAll, {
    callback: () => {
      last = performance.now()
      first ??= last
    },
  })
  // The job log's records (one per group commit of the leader), where the queen keeps one.
  const log = (subjects as { log?: string }).log
  if (log !== undefined) {
    nc.subscribe(log, {
      callback: (_err, m) => {
        records++
        bytes += m.data.length
      },
    })
  }
  return {
    reset: () => {
      first = last = undefined
      records = bytes = 0
    },
    heard: (t0) => (first === undefined || last === undefined ? undefined : { firstMs: first - t0, lastMs: last - t0, ...(log !== undefined ? { records, bytes } : {}) }),
  }
}

interface CpuSnapshot {
  [who: string]: number | undefined
}

interface Results {
  opts: Opts
  procs: number
  raw: Round[]
  apiary: Round[]
  rawCpu: CpuSnapshot
  apiaryCpu: CpuSnapshot
  queenMem: MemStatus | undefined
  hiveMem: MemStatus | undefined
  natsMem: MemStatus | undefined
  hostsMem: MemStatus[]
  startupS: number
}

async function run(opts: Opts, ctx: BenchContext): Promise<Results> {
  const { signal, teardown, pids } = ctx
  const N = opts.nodes
  const WARMUP = opts.warmup
  const P = Math.min(opts.procs, N)

  progress('starting nats-server')
  const nats = await startNats()
  teardown.add('nats-server', () => nats.stop())
  const natsPid = await findPid(['nats-server', '-p', String(nats.port)])

  const stateDir = await tempDir('bench-fanout')
  teardown.add('state dir', () => stateDir.remove())

  const { queen, hive, client } = await startQueenAndHive({ natsUrl: nats.url, stateDir: stateDir.path, region: REGION, heartbeatMs: HEARTBEAT_MS, profileDir: opts.profileDir }, ctx)
  const nc = await connect({ servers: nats.url, name: 'bench-fanout', timeout: 10_000 })
  teardown.add('bench NATS connection', () => nc.close())

  // The queen wrote its public key on start; the workers pin it.
  const queenKey = (await readFile(join(stateDir.path, 'signing.pub'), 'utf8')).trim()
  const nodeIds = Array.from({ length: N }, (_, i) => `bench-${String(i + 1).padStart(5, '0')}`)
  progress(`starting ${N} workers and ${N} raw responders in ${P} processes (${2 * N} NATS connections)`)
  const t0 = performance.now()
  const hosts: Host[] = []
  const hostsMem: MemStatus[] = []
  teardown.add('worker hosts', async () => {
    for (const h of hosts) {
      const m = await memStatus(h.pid)
      if (m) hostsMem.push(m)
    }
    await Promise.all(hosts.map((h) => h.stop(20_000)))
  })
  for (let i = 0; i < P; i++) {
    const slice = nodeIds.slice(Math.floor((i * N) / P), Math.floor(((i + 1) * N) / P))
    const host = startHost(
      i,
      { natsUrl: nats.url, region: REGION, heartbeatMs: HEARTBEAT_MS, queenKey, nodeIds: slice, rawPrefix: RAW_PREFIX, parallelism: Math.max(1, Math.ceil(CONNECT_PARALLELISM / P)) },
      // At error: each of the host's connections to this unauthenticated server warns about it at warn.
      { APIARY_LOG_LEVEL: 'error' },
      signal,
      cpuProfFlags(opts.profileDir),
    )
    hosts.push(host)
    pids.add(host.pid)
  }
  if (opts.profileDir) progress(`CPU profiles of the worker hosts go to ${opts.profileDir} too: pids ${hosts.map((h) => h.pid).join(', ')}`)
  const ticker = setInterval(() => progress(`  ${hosts.reduce((s, h) => s + h.opened(), 0)} of ${2 * N} connections open`), 3000)
  try {
    await Promise.all(hosts.map((h) => h.ready))
  } finally {
    clearInterval(ticker)
  }
  progress(`all ${2 * N} connections open in ${((performance.now() - t0) / 1000).toFixed(1)} s; waiting for the queen to see ${N} nodes online`)

  let online = 0
  const ids = new Set(nodeIds)
  await waitUntil(
    async () => {
      online = (await client.nodes()).filter((n) => n.online && n.region === REGION && ids.has(n.id)).length
      return online === N
    },
    Math.max(60_000, N * 30),
    500,
    signal,
    () => `the queen to list ${N} nodes online (last count ${online})`,
  )
  const startupS = (performance.now() - started) / 1000
  progress(`queen lists ${N} nodes online; cluster up in ${startupS.toFixed(1)} s`)

  const cpuPids: Record<string, number | undefined> = { queen: queen.pid, hive: hive.pid, 'nats-server': natsPid }
  const cpuNow = async (): Promise<CpuSnapshot> => {
    const self = process.cpuUsage()
    const out: CpuSnapshot = { bench: (self.user + self.system) / 1000 }
    for (const [who, pid] of Object.entries(cpuPids)) out[who] = pid === undefined ? undefined : await cpuMs(pid)
    let hostsCpu = 0
    for (const h of hosts) hostsCpu += (await cpuMs(h.pid)) ?? 0
    out.hosts = hostsCpu
    return out
  }
  const cpuDelta = (a: CpuSnapshot, b: CpuSnapshot, rounds: number): CpuSnapshot => {
    const out: CpuSnapshot = {}
    for (const k of Object.keys(b)) out[k] = a[k] === undefined || b[k] === undefined ? undefined : (b[k]! - a[k]!) / rounds
    return out
  }

  // Raw baseline first: the same connections are open as during the apiary jobs.
  progress(`raw NATS baseline: ${WARMUP} warm-up + ${opts.jobs} timed scatter-gathers to ${N} subjects`)
  const raw: Round[] = []
  let cpuA: CpuSnapshot = {}
  for (let i = 0; i < WARMUP + opts.jobs; i++) {
    signal.throwIfAborted()
    if (i === WARMUP) cpuA = await cpuNow()
    const r = await rawRound(nc, nodeIds)
    if (i >= WARMUP) raw.push(r)
    progress(`  raw ${i < WARMUP ? `warm-up ${i + 1}` : `${i - WARMUP + 1}/${opts.jobs}`}: ${fmt(r.ms)} ms${r.ok ? '' : ` NOT COUNTED: ${r.note}`}`)
    await sleep(100, signal)
  }
  const rawCpu = cpuDelta(cpuA, await cpuNow(), opts.jobs)

  progress(`apiary: ${WARMUP} warm-up + ${opts.jobs} timed ping jobs to all ${N} nodes (concurrency ${N})`)
  // A listener on every node event costs nats-server a delivery each: only when asked.
  const tap = opts.tap ? tapNodeEvents(nc) : undefined
  await nc.flush()
  const apiary: Round[] = []
  for (let i = 0; i < WARMUP + opts.jobs; i++) {
    signal.throwIfAborted()
    if (i === WARMUP) cpuA = await cpuNow()
    const r = await apiaryJob(client, N, signal, tap)
    if (i >= WARMUP) apiary.push(r)
    progress(`  apiary ${i < WARMUP ? `warm-up ${i + 1}` : `${i - WARMUP + 1}/${opts.jobs}`}: ${fmt(r.ms)} ms${r.ok ? '' : ` NOT COUNTED: ${r.note}`}`)
    await sleep(100, signal)
  }
  const apiaryCpu = cpuDelta(cpuA, await cpuNow(), opts.jobs)

  const queenMem = await memStatus(queen.pid)
  const hiveMem = await memStatus(hive.pid)
  const natsMem = natsPid === undefined ? undefined : await memStatus(natsPid)
  // Host memory is read in teardown, just before the hosts stop; print it from there.
  return { opts, procs: P, raw, apiary, rawCpu, apiaryCpu, queenMem, hiveMem, natsMem, hostsMem, startupS }
}

const enc = new TextEncoder()

/**
 * One scatter-gather: a task-sized JSON request to each node's subject, all in flight at once
 * on one connection (nats.js muxes the replies on one inbox, as the hive's requests are), until
 * the last reply.
 */
async function rawRound(nc: NatsConnection, nodeIds: string[]): Promise<Round> {
  const t0 = performance.now()
  const results = await Promise.allSettled(
    nodeIds.map((node) =>
      nc.request(
        `${RAW_PREFIX}.${node}`,
        enc.encode(JSON.stringify({ jobId: 'bench', node, operation: { type: 'ping' }, timeoutMs: JOB_TIMEOUT_MS, outputCapBytes: 1 << 20 })),
        { timeout: ROUND_LIMIT_MS },
      ),
    ),
  )
  const ms = performance.now() - t0
  const failed = results.filter((r) => r.status === 'rejected')
  if (failed.length === 0) return { ms, ok: true, note: '' }
  return { ms, ok: false, note: `${failed.length} of ${nodeIds.length} requests failed, first: ${errorMessage((failed[0] as PromiseRejectedResult).reason)}` }
}

/** One ping job to every node: submit → job.finished on the job's SSE stream. */
async function apiaryJob(client: JobClient, n: number, signal: AbortSignal, tap: ReturnType<typeof tapNodeEvents> | undefined): Promise<Round> {
  const limit = AbortSignal.any([signal, AbortSignal.timeout(ROUND_LIMIT_MS)])
  tap?.reset()
  const t0 = performance.now()
  let jobId = '?'
  try {
    const created = await client.submit({ operation: { type: 'ping' }, targets: 'all', rollout: { concurrency: n, timeoutMs: JOB_TIMEOUT_MS } })
    jobId = created.jobId
    for await (const ev of client.stream(jobId, { signal: limit })) {
      if (ev.kind !== 'job.finished') continue
      const ms = performance.now() - t0
      const ok = ev.counts.ok ?? 0
      const heard = tap?.heard(t0)
      if (created.nodes.length === n && ok === n) return { ms, ok: true, note: '', ...(heard ? { heard } : {}) }
      const counts = Object.entries(ev.counts).map(([k, v]) => `${k} ${v}`).join(', ')
      return { ms, ok: false, note: `job ${jobId} ${ev.state}: ${counts} (targets ${created.nodes.length}, want ${n} ok)` }
    }
  } catch (err) {
    signal.throwIfAborted()
    return { ms: performance.now() - t0, ok: false, note: `job ${jobId}: ${errorMessage(err)}` }
  }
  signal.throwIfAborted()
  return { ms: performance.now() - t0, ok: false, note: `job ${jobId}: no job.finished within ${ROUND_LIMIT_MS} ms` }
}

function report(r: Results): string {
  const okMs = (rounds: Round[]) => rounds.filter((x) => x.ok).map((x) => x.ms)
  const a = okMs(r.apiary)
  const w = okMs(r.raw)
  const aMed = median(a)
  const wMed = median(w)
  const ratio = aMed / wMed
  const qPeak = r.queenMem?.peakMb ?? Number.NaN
  const verdict = (ok: boolean, known: boolean) => (!known ? 'n/a' : ok ? 'PASS' : 'MISS')
  const mb = (m: MemStatus | undefined) => (m ? `${fmt(m.peakMb)} / ${fmt(m.rssMb)}` : 'n/a')
  const cores = availableParallelism()
  const cpuModel = cpus()[0]?.model.trim() ?? 'unknown cpu'
  let natsVersion = 'unknown'
  try {
    natsVersion = execFileSync('nats-server', ['--version'], { encoding: 'utf8' }).trim()
  } catch {
    // leave unknown
  }
  const counted = (rounds: Round[]) => `${rounds.filter((x) => x.ok).length} of ${rounds.length}`
  const hostsPeak = r.hostsMem.reduce((s, m) => s + m.peakMb, 0)

  const lines: string[] = []
  lines.push('')
  lines.push('apiary fan-out benchmark: one ping job to every node, one job at a time')
  lines.push(`machine: ${cores} cores (${cpuModel}), ${fmt(totalmem() / 1e9)} GB RAM, node ${process.version}, ${natsVersion}`)
  lines.push(
    `topology: nats-server, queen, 1 hive, ${r.opts.nodes} workers (one NATS connection each) in ${r.procs} processes;` +
      ` raw baseline = ${r.opts.nodes} more plain connections in the same processes, measured before the apiary jobs with all ${2 * r.opts.nodes} connections open`,
  )
  lines.push(`cluster start-up: ${fmt(r.startupS)} s; ${r.opts.warmup} warm-ups then ${r.opts.jobs} timed rounds each; p99 is nearest-rank (the max below 100 rounds)`)
  lines.push('')
  lines.push(
    table([
      ['N', 'procs', 'apiary median ms', 'apiary p99 ms', 'raw median ms', 'raw p99 ms', 'ratio (median)', 'queen peak RSS MB'],
      [String(r.opts.nodes), String(r.procs), fmt(aMed), fmt(percentile(a, 99)), fmt(wMed), fmt(percentile(w, 99)), `${fmt(ratio, 2)}x`, fmt(qPeak)],
    ]),
  )
  lines.push(
    `per node: apiary ${fmt((aMed * 1000) / r.opts.nodes, 0)} µs of wall time (median / N), raw ${fmt((wMed * 1000) / r.opts.nodes, 0)} µs; ` +
      `the queen ${fmt(((r.apiaryCpu.queen ?? Number.NaN) * 1000) / r.opts.nodes, 0)} µs of CPU (its CPU per job / N)`,
  )
  lines.push('')
  const heard = r.apiary.filter((x) => x.ok && x.heard).map((x) => ({ ...x.heard!, ms: x.ms }))
  if (heard.length === 0) lines.push('where an apiary job’s time goes: not measured (--no-tap)')
  else {
    lines.push(
      table([
        ['where an apiary job’s time goes (median ms, node events as heard on the bus)', 'ms'],
        [PHASES.dispatch, fmt(median(heard.map((h) => h.firstMs)))],
        [PHASES.workers, fmt(median(heard.map((h) => h.lastMs - h.firstMs)))],
        [PHASES.tail, fmt(median(heard.map((h) => h.ms - h.lastMs)))],
      ]),
    )
  }
  const logged = heard.filter((h) => h.records !== undefined)
  if (logged.length > 0) {
    lines.push(
      `the job log per job (median): ${fmt(median(logged.map((h) => h.records!)), 0)} records (group commits), ` +
        `${fmt(median(logged.map((h) => h.bytes!)) / 1e3, 0)} kB, ${fmt(median(logged.map((h) => h.bytes! / h.records!)) / 1e3, 1)} kB a record`,
    )
  }
  lines.push('')
  lines.push(
    table([
      ['goal', 'measured', 'verdict'],
      [`apiary median within ${GOAL_RATIO}x raw`, `${fmt(ratio, 2)}x`, verdict(ratio <= GOAL_RATIO, Number.isFinite(ratio))],
      [`queen peak RSS < ${GOAL_QUEEN_MB} MB`, `${fmt(qPeak)} MB`, verdict(qPeak < GOAL_QUEEN_MB, Number.isFinite(qPeak))],
    ]),
  )
  lines.push('')
  lines.push(
    table([
      ['memory (MB = 10^6 bytes)', 'peak (VmHWM) / now (VmRSS)'],
      ['queen', mb(r.queenMem)],
      ['hive', mb(r.hiveMem)],
      ['nats-server', mb(r.natsMem)],
      [`worker hosts (${r.hostsMem.length}, summed peak)`, r.hostsMem.length ? fmt(hostsPeak) : 'n/a'],
    ]),
  )
  lines.push('')
  const who = ['queen', 'hive', 'nats-server', 'hosts', 'bench']
  lines.push(
    table([
      ['CPU ms per timed round (incl. heartbeats)', ...who],
      ['apiary job', ...who.map((k) => fmt(r.apiaryCpu[k] ?? Number.NaN, 0))],
      ['raw scatter-gather', ...who.map((k) => fmt(r.rawCpu[k] ?? Number.NaN, 0))],
    ]),
  )
  lines.push('')
  lines.push(`counted: apiary ${counted(r.apiary)} jobs, raw ${counted(r.raw)} rounds`)
  lines.push(`apiary ms: ${r.apiary.map((x) => fmt(x.ms, 0) + (x.ok ? '' : '!')).join(' ')}`)
  lines.push(`raw ms:    ${r.raw.map((x) => fmt(x.ms, 0) + (x.ok ? '' : '!')).join(' ')}`)
  for (const x of [...r.apiary, ...r.raw]) if (!x.ok) lines.push(`not counted: ${x.note}`)
  return lines.join('\n')
}

/** What the comparison reads from one run's report. */
interface RunFigures {
  apiaryMs: number
  rawMs: number
  ratio: number
  queenCpuMs: number
  hiveCpuMs: number
  natsCpuMs: number
  hostsCpuMs: number
  queenPeakMb: number
  /** Where the time went (NaN from a report that does not say). */
  dispatchMs: number
  workersMs: number
  tailMs: number
}

const PHASES = {
  dispatch: 'submit → first node event (the queen plans and signs, the hive dispatches)',
  workers: 'first → last node event (the workers run and publish)',
  tail: 'last node event → job.finished on the stream (the queen takes, stores, streams)',
}

function figures(report: string, n: number): RunFigures {
  const main = readTable(report, 'N ')
  const cpu = readTable(report, 'CPU ms per timed round')
  const phases = readTable(report, 'where an apiary job')
  const row = String(n)
  return {
    dispatchMs: cell(phases, PHASES.dispatch, 'ms'),
    workersMs: cell(phases, PHASES.workers, 'ms'),
    tailMs: cell(phases, PHASES.tail, 'ms'),
    apiaryMs: cell(main, row, 'apiary median ms'),
    rawMs: cell(main, row, 'raw median ms'),
    ratio: cell(main, row, 'ratio (median)'),
    queenPeakMb: cell(main, row, 'queen peak RSS MB'),
    queenCpuMs: cell(cpu, 'apiary job', 'queen'),
    hiveCpuMs: cell(cpu, 'apiary job', 'hive'),
    natsCpuMs: cell(cpu, 'apiary job', 'nats-server'),
    hostsCpuMs: cell(cpu, 'apiary job', 'hosts'),
  }
}

/** This benchmark's flags for a child run: everything but --before and --pairs; profiles apart per run. */
function childArgs(o: Opts, tree: Tree, pair: number): string[] {
  const args = ['--nodes', String(o.nodes), '--jobs', String(o.jobs), '--procs', String(o.procs), '--warmup', String(o.warmup), '--time-limit', String(o.timeLimitS)]
  if (o.profileDir) args.push('--profile', join(o.profileDir, `${tree}-${pair}`))
  // Both checkouts measured alike: the older commit's bench has no such listener.
  if (tree === 'now') args.push('--no-tap')
  return args
}

function compareReport(o: Opts, runs: TreeRun[]): string {
  const n = o.nodes
  const lines: string[] = ['', `before/now: bench:fanout at N = ${n}, ${o.pairs} run(s) in each checkout, alternating; before = ${o.before}`, '']
  const rows = runs.map((r) => ({ ...r, f: figures(r.stdout, n) }))
  for (const r of rows) lines.push(`--- ${r.tree} ${r.pair} ---`, r.stdout.trim(), '')
  lines.push(
    table([
      ['run', 'apiary median ms', 'raw median ms', 'ratio to raw', '→ first event ms', 'first → last ms', 'last → finished ms', 'queen CPU ms/job', 'hive CPU ms/job', 'nats-server CPU ms/job', 'hosts CPU ms/job', 'queen peak MB'],
      ...rows.map(({ tree, pair, f }) => [
        `${tree} ${pair}`,
        fmt(f.apiaryMs),
        fmt(f.rawMs),
        `${fmt(f.ratio, 2)}x`,
        fmt(f.dispatchMs),
        fmt(f.workersMs),
        fmt(f.tailMs),
        fmt(f.queenCpuMs, 0),
        fmt(f.hiveCpuMs, 0),
        fmt(f.natsCpuMs, 0),
        fmt(f.hostsCpuMs, 0),
        fmt(f.queenPeakMb),
      ]),
    ]),
  )
  lines.push('')
  const pairs = byPair(runs, (report) => figures(report, n))
  const perNodeUs = (ms: number) => fmt((ms * 1000) / n, 0)
  lines.push(
    table([
      ['pair', 'wall now/before', 'ratio-to-raw now/before', 'queen CPU now/before', 'extra wall per node µs', 'extra queen CPU per node µs'],
      ...pairs.map(({ pair, before, now }) => [
        String(pair),
        times(now.apiaryMs, before.apiaryMs),
        times(now.ratio, before.ratio),
        times(now.queenCpuMs, before.queenCpuMs),
        perNodeUs(now.apiaryMs - before.apiaryMs),
        perNodeUs(now.queenCpuMs - before.queenCpuMs),
      ]),
    ]),
  )
  const wall = median(pairs.map((p) => p.now.apiaryMs / p.before.apiaryMs))
  const normalised = median(pairs.map((p) => p.now.ratio / p.before.ratio))
  lines.push('')
  lines.push(
    table([
      ['goal', 'measured (median of pairs)', 'verdict'],
      [
        `apiary median within ${GOAL_BEFORE_RATIO}x the older commit's`,
        `${fmt(wall, 2)}x (against each run's raw baseline: ${fmt(normalised, 2)}x)`,
        !Number.isFinite(wall) ? 'n/a' : wall <= GOAL_BEFORE_RATIO ? 'PASS' : 'MISS',
      ],
    ]),
  )
  return lines.join('\n')
}

async function main(): Promise<number> {
  const o = optionsOrExit('bench:fanout', USAGE, parseOpts)
  if (typeof o === 'number') return o
  if (o.before !== undefined) {
    const before = o.before
    const { result: runs } = await runBench('bench:fanout --before', o.timeLimitS * 2 * o.pairs, (ctx) => runBeforeAndNow('bench:fanout', (tree, pair) => childArgs(o, tree, pair), before, o.pairs, ctx))
    if (runs) process.stdout.write(`${compareReport(o, runs)}\n`)
    return runs ? 0 : 1
  }
  const { result: results } = await runBench('bench:fanout', o.timeLimitS, (ctx) => run(o, ctx))
  const code = results ? 0 : 1
  if (results) process.stdout.write(`${report(results)}\n`)
  return code
}

process.exit(await main())
