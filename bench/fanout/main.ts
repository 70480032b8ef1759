/**
 * Fan-out benchmark: how long apiary takes to ping every node of a fleet, next to the floor
 * set by plain NATS request/reply over the same topology, in the same run.
 *
 *   pnpm bench:fanout [--nodes N] [--jobs J] [--procs P]
 *
 * Topology, every part its own OS process: one nats-server, one queen, one hive (region
 * `bench`), and N agent workers (the real `startWorker`, one NATS connection each) spread over
 * P worker-host processes. The raw baseline adds N plain NATS responders (one connection each)
 * in the same hosts and is measured first, with all 2N connections open, so both measurements
 * see the same server and the same number of live connections and heartbeats.
 */
import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { availableParallelism, cpus, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { errorMessage } from '@apiary/shared'
import type { JobClient } from '@apiary/shared/client'
import { startNats } from '../../test/harness/nats.ts'
import { tempDir } from '../../test/harness/temp.ts'
import { type Host, startHost } from './hosts.ts'
import { benchArgs, optionsOrExit, wholeNumber } from '../lib/args.ts'
import { startQueenAndHive } from '../lib/daemons.ts'
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

const USAGE = `bench:fanout — apiary's fan-out latency beside raw NATS request/reply, same run

usage: pnpm bench:fanout [--nodes N] [--jobs J] [--procs P] [--warmup W] [--time-limit S] [--profile DIR]

  --nodes N        agent workers (and raw responders), default 1000
  --jobs J         timed jobs (and raw rounds) after the warm-ups, default 20
  --procs P        child processes hosting the workers, default 4
  --warmup W       untimed warm-up jobs (and raw rounds) first, default ${DEFAULT_WARMUP}
  --time-limit S   abort with an error after S seconds in all, default 600
  --profile DIR    run queen and hive with --cpu-prof, writing .cpuprofile files to DIR
  -h, --help       show this help

Prints median and p99 (nearest rank) of the wall time of a ping job to all N nodes
(submit → job.finished on the SSE stream) and of a raw scatter-gather (one request to each of
N subjects, all in flight at once, until the N-th reply), their ratio, and the queen's and
hive's peak RSS (VmHWM).
`

interface Opts {
  nodes: number
  jobs: number
  procs: number
  warmup: number
  timeLimitS: number
  profileDir: string | undefined
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
  }
}


interface Round {
  ms: number
  ok: boolean
  /** Why it does not count, when !ok. */
  note: string
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
    )
    hosts.push(host)
    pids.add(host.pid)
  }
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
  const apiary: Round[] = []
  for (let i = 0; i < WARMUP + opts.jobs; i++) {
    signal.throwIfAborted()
    if (i === WARMUP) cpuA = await cpuNow()
    const r = await apiaryJob(client, N, signal)
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
async function apiaryJob(client: JobClient, n: number, signal: AbortSignal): Promise<Round> {
  const limit = AbortSignal.any([signal, AbortSignal.timeout(ROUND_LIMIT_MS)])
  const t0 = performance.now()
  let jobId = '?'
  try {
    const created = await client.submit({ operation: { type: 'ping' }, targets: 'all', rollout: { concurrency: n, timeoutMs: JOB_TIMEOUT_MS } })
    jobId = created.jobId
    for await (const ev of client.stream(jobId, { signal: limit })) {
      if (ev.kind !== 'job.finished') continue
      const ms = performance.now() - t0
      const ok = ev.counts.ok ?? 0
      if (created.nodes.length === n && ok === n) return { ms, ok: true, note: '' }
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

async function main(): Promise<number> {
  const o = optionsOrExit('bench:fanout', USAGE, parseOpts)
  if (typeof o === 'number') return o
  const { result: results } = await runBench('bench:fanout', o.timeLimitS, (ctx) => run(o, ctx))
  const code = results ? 0 : 1
  if (results) process.stdout.write(`${report(results)}\n`)
  return code
}

process.exit(await main())
