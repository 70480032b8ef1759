/**
 * Rollout benchmark: apiary at ten thousand agent nodes, driven by the real keeper CLI.
 *
 *   pnpm bench:rollout [--nodes N] [--procs P] [--duration MS] [--many-lines L] [--rounds R] [--profile DIR] …  (--help)
 *   pnpm bench:rollout --before DIR [--pairs K] …   the same in an older commit's worktree and here, compared
 *
 * Topology, every part its own OS process: one nats-server, one queen, one hive (region
 * `bench`), N simulated agent nodes (test/fleet/agents.ts: the real wire contract, a few NATS
 * connections per thousand nodes) in P fleet-host processes, and for each job one `keeper run`
 * whose stdout is a pipe this process drains. Alongside keeper, this process follows the job's
 * SSE stream (with output) and counts what arrives.
 *
 * Jobs, all `keeper run --concurrency 10% --max-errors 1% -- true` on every node:
 *   A   0.5% of nodes fail (below the budget): must finish all N, ~0.5% failed, no stop; keeper -o ndjson
 *   A'  the same with keeper -o text --no-group on a pipe: every node's output line and end line
 *   A'' the same again, each node printing L lines (--many-lines): keeper prints ~L times the lines
 *       of A'; its peak RSS must not follow
 *   B   5% of nodes fail: must stop early ("max errors reached"), the rest skipped; keeper -o ndjson
 * The failing nodes are every k-th node (test/fleet `failsAt`); the fleet hosts switch fail rate
 * and output lines over IPC between jobs.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { availableParallelism, cpus, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { errorMessage, resolveCount } from '@apiary/shared'
import type { JobClient } from '@apiary/shared/client'
import { startNats } from '../../test/harness/nats.ts'
import { tempDir } from '../../test/harness/temp.ts'
import { type FleetHost, startFleetHost } from './fleets.ts'
import { type KeeperResult, type RssSample, rssSlope, runKeeper } from './keeper.ts'
import { benchArgs, optionsOrExit, wholeNumber } from '../lib/args.ts'
import { byPair, cell, readTable, runBeforeAndNow, times, type Tree, type TreeRun } from '../lib/compare.ts'
import { cpuProfFlags, startQueenAndHive } from '../lib/daemons.ts'
import { cpuMs, findPid, type MemStatus, memStatus } from '../lib/procfs.ts'
import { ROOT } from '../lib/roles.ts'
import { type BenchContext, progress, runBench, started } from '../lib/run.ts'
import { measureSigning, type SigningCost, signingReport } from '../lib/signing.ts'
import { fmt, table } from '../lib/stats.ts'
import { sleep, waitUntil } from '../lib/wait.ts'

const REGION = 'bench'
const PREFIX = 'agent'
const CONCURRENCY = '10%'
const MAX_ERRORS = '1%'
const GOAL_QUEEN_MB = 300
const GOAL_KEEPER_MB = 150
/**
 * From A' to A'' (many more lines printed) keeper's peak RSS may rise by at most this much: GC
 * timing alone moves a peak by ~10 MB. At 10,000 nodes and 50 lines a node that is < 31 bytes
 * per extra line, less than keeping each line would cost.
 */
const GOAL_LINES_MB = 15
/** Nodes per NATS connection of the fleet. */
const NODES_PER_CONNECTION = 1000

const USAGE = `bench:rollout — apiary rolling a command out to N simulated agent nodes through the real keeper

usage: pnpm bench:rollout [--nodes N] [--procs P] [--duration MS] [--many-lines L] [--rounds R]
                          [--heartbeat MS] [--job-limit S] [--time-limit S] [--profile DIR]
                          [--keeper-flags F] [--keeper-entry F] [--before DIR [--pairs K]]

  --nodes N        simulated agent nodes, default 10000
  --procs P        fleet-host processes, default 2
  --duration MS    how long each simulated task runs, default 0
  --many-lines L   lines each node prints in job A'', default 50
  --rounds R       run the four jobs R times (does the queen's memory creep?), default 1
  --heartbeat MS   heartbeat interval of the nodes and the hive, default 5000
  --job-limit S    one keeper run may take this long, default 300
  --time-limit S   abort with an error after S seconds in all, default 900
  --profile DIR    run queen, hive and keeper with --cpu-prof, writing .cpuprofile files to DIR
  --keeper-flags F extra node flags for keeper, space-separated (diagnosis: --keeper-flags=--max-semi-space-size=1)
  --keeper-entry F the script to run as keeper instead of packages/keeper/bin/keeper.mjs (a build of it)
  --before DIR     also run this benchmark in DIR (a worktree of an older commit, after pnpm install
                   there), in turn with this checkout, and compare jobs A and B: wall time, the
                   queen's CPU and peak RSS, nats-server's CPU (--keeper-* are not passed on)
  --pairs K        with --before: K runs in each checkout, alternating which goes first, default 1
  -h, --help       show this help

Four jobs, each 'keeper run --concurrency ${CONCURRENCY} --max-errors ${MAX_ERRORS} -- true' on all N nodes:
A (0.5% fail, keeper -o ndjson), A' (the same, keeper -o text --no-group), A'' (the same, each node
printing L lines) and B (5% fail, must stop early). Prints per job: submit → job.finished, counts by
state, stop reason, events and events/s through SSE, the queen's and keeper's peak RSS and keeper's
RSS slope per 10,000 lines printed; then the goals (queen < ${GOAL_QUEEN_MB} MB, keeper < ${GOAL_KEEPER_MB} MB, B stopped
early, keeper printed the whole stream, keeper's peak flat in the lines printed) with PASS or MISS.
`

interface Opts {
  nodes: number
  procs: number
  durationMs: number
  manyLines: number
  rounds: number
  keeperFlags: string[]
  keeperEntry: string
  heartbeatMs: number
  jobLimitS: number
  timeLimitS: number
  profileDir: string | undefined
  before: string | undefined
  pairs: number
}

function parseOpts(argv: string[]): Opts | 'help' {
  const { values } = parseArgs({
    args: benchArgs(argv),
    options: {
      nodes: { type: 'string', default: '10000' },
      procs: { type: 'string', default: '2' },
      duration: { type: 'string', default: '0' },
      'many-lines': { type: 'string', default: '50' },
      rounds: { type: 'string', default: '1' },
      'keeper-flags': { type: 'string', default: '' },
      'keeper-entry': { type: 'string', default: join(ROOT, 'packages/keeper/bin/keeper.mjs') },
      heartbeat: { type: 'string', default: '5000' },
      'job-limit': { type: 'string', default: '300' },
      'time-limit': { type: 'string', default: '900' },
      profile: { type: 'string' },
      before: { type: 'string' },
      pairs: { type: 'string', default: '1' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  })
  if (values.help) return 'help'
  return {
    nodes: wholeNumber(values.nodes, '--nodes', 100, 99_999),
    procs: wholeNumber(values.procs, '--procs', 1, 16),
    durationMs: wholeNumber(values.duration, '--duration', 0, 600_000),
    manyLines: wholeNumber(values['many-lines'], '--many-lines', 1, 1000),
    rounds: wholeNumber(values.rounds, '--rounds', 1, 100),
    keeperFlags: values['keeper-flags'].split(/\s+/).filter(Boolean),
    keeperEntry: resolve(values['keeper-entry']),
    heartbeatMs: wholeNumber(values.heartbeat, '--heartbeat', 100, 60_000),
    jobLimitS: wholeNumber(values['job-limit'], '--job-limit', 10, 24 * 3600),
    timeLimitS: wholeNumber(values['time-limit'], '--time-limit', 30, 24 * 3600),
    profileDir: values.profile === undefined ? undefined : resolve(values.profile),
    before: values.before === undefined ? undefined : resolve(values.before),
    pairs: wholeNumber(values.pairs, '--pairs', 1, 20),
  }
}


interface JobSpec {
  name: string
  failRate: number
  /** Lines each node prints; 0 stands for --many-lines. */
  outputLines: number
  format: 'ndjson' | 'text'
  noGroup: boolean
  /** B: must stop early on the error budget; A: must finish every node. */
  mustStop: boolean
}

const JOBS: JobSpec[] = [
  { name: 'A', failRate: 0.005, outputLines: 1, format: 'ndjson', noGroup: false, mustStop: false },
  { name: "A'", failRate: 0.005, outputLines: 1, format: 'text', noGroup: true, mustStop: false },
  { name: "A''", failRate: 0.005, outputLines: 0, format: 'text', noGroup: true, mustStop: false },
  { name: 'B', failRate: 0.05, outputLines: 1, format: 'ndjson', noGroup: false, mustStop: true },
]

interface SseResult {
  events: number
  /** ms from the stream's first event to job.finished. */
  spanMs: number
  /** ms from asking for the stream to job.finished. */
  totalMs: number
  gapless: boolean
  fin: { seq: number; counts: Record<string, number>; stopReason: string | null; durationMs: number; state: string; groups: number } | undefined
  error: string | undefined
}

type Cpu = Record<string, number | undefined>

interface JobResult {
  spec: JobSpec
  outputLines: number
  jobId: string | undefined
  expectedFailing: number
  maxErrors: number
  keeper: KeeperResult
  sse: SseResult
  /** The finished job's whole stream read again from the store: SSE throughput without the rollout. */
  replay: SseResult | undefined
  queenMem: MemStatus | undefined
  hiveMem: MemStatus | undefined
  cpu: Cpu
  /** What did not hold; empty when the job did what it must. */
  problems: string[]
}

interface Results {
  opts: Opts
  startupS: number
  onlineS: number
  jobs: JobResult[]
  natsMem: MemStatus | undefined
  fleetMem: Array<number | null>
  fleetEvents: number
  signing: SigningCost
}

async function run(opts: Opts, ctx: BenchContext, results: Partial<Results>): Promise<void> {
  const { signal, teardown, pids } = ctx
  const N = opts.nodes
  const P = Math.min(opts.procs, N)

  progress('starting nats-server')
  const nats = await startNats()
  teardown.add('nats-server', () => nats.stop())
  const natsPid = await findPid(['nats-server', '-p', String(nats.port)])

  const stateDir = await tempDir('bench-rollout')
  teardown.add('state dir', () => stateDir.remove())
  const keeperDir = join(stateDir.path, 'keeper')
  mkdirSync(keeperDir, { recursive: true, mode: 0o700 })

  const { queen, hive, queenUrl, tokenFile, client } = await startQueenAndHive({ natsUrl: nats.url, stateDir: stateDir.path, region: REGION, heartbeatMs: opts.heartbeatMs, profileDir: opts.profileDir }, ctx)

  progress(`starting ${N} simulated agent nodes in ${P} fleet processes`)
  const t0 = performance.now()
  const hosts: FleetHost[] = []
  const fleetMem: Array<number | null> = []
  results.fleetMem = fleetMem
  teardown.add('fleet hosts', async () => {
    const stopped = await Promise.all(hosts.map((h) => h.stop(20_000)))
    for (const s of stopped) fleetMem.push(s.maxRssKb === null ? null : (s.maxRssKb * 1024) / 1e6)
    results.fleetEvents = stopped.reduce((n, s) => n + (s.stats?.events ?? 0), 0)
  })
  for (let i = 0; i < P; i++) {
    const first = Math.floor((i * N) / P)
    const count = Math.floor(((i + 1) * N) / P) - first
    const host = startFleetHost(
      i,
      {
        natsUrl: nats.url,
        region: REGION,
        prefix: PREFIX,
        first,
        count,
        connections: Math.max(1, Math.ceil(count / NODES_PER_CONNECTION)),
        failRate: 0,
        heartbeatMs: opts.heartbeatMs,
        durationMs: opts.durationMs,
      },
      { APIARY_LOG_LEVEL: 'warn' },
      signal,
    )
    hosts.push(host)
    pids.add(host.pid)
  }
  await Promise.all(hosts.map((h) => h.ready))
  progress(`fleet up in ${((performance.now() - t0) / 1000).toFixed(1)} s; waiting for the queen to list ${N} nodes online`)

  let online = 0
  await waitUntil(
    async () => {
      online = (await client.nodes()).filter((n) => n.online && n.region === REGION).length
      return online >= N
    },
    Math.max(60_000, N * 20),
    1000,
    signal,
    () => `the queen to list ${N} nodes online (last count ${online})`,
  )
  results.onlineS = (performance.now() - t0) / 1000
  results.startupS = (performance.now() - started) / 1000
  progress(`queen lists ${N} nodes online, ${fmt(results.onlineS)} s after the fleet started`)

  const cpuPids: Record<string, number | undefined> = { queen: queen.pid, hive: hive.pid, 'nats-server': natsPid }
  const cpuNow = async (): Promise<Cpu> => {
    const self = process.cpuUsage()
    const out: Cpu = { bench: (self.user + self.system) / 1000 }
    for (const [who, pid] of Object.entries(cpuPids)) out[who] = pid === undefined ? undefined : await cpuMs(pid)
    let fleet = 0
    for (const h of hosts) fleet += (await cpuMs(h.pid)) ?? 0
    out.fleet = fleet
    return out
  }

  results.jobs = []
  const maxErrors = resolveCount(MAX_ERRORS, N)
  for (let round = 1; round <= opts.rounds; round++) for (const base of JOBS) {
    signal.throwIfAborted()
    const spec = round === 1 ? base : { ...base, name: `${base.name}#${round}` }
    const outputLines = spec.outputLines || opts.manyLines
    const perHost = await Promise.all(hosts.map((h) => h.configure({ failRate: spec.failRate, outputLines }, 10_000)))
    const expectedFailing = perHost.reduce((a, b) => a + b, 0)
    progress(`job ${spec.name}: ${fmt(spec.failRate * 100)}% failing (${expectedFailing} nodes), ${outputLines} output line${outputLines === 1 ? '' : 's'} per node, keeper -o ${spec.format}${spec.noGroup ? ' --no-group' : ''}`)
    const cpuA = await cpuNow()
    const r = await oneJob(spec, { client, queenUrl, tokenFile, keeperDir, nodeFlags: [...cpuProfFlags(opts.profileDir), ...opts.keeperFlags], entry: opts.keeperEntry, jobLimitMs: opts.jobLimitS * 1000, signal })
    const cpuB = await cpuNow()
    const cpu: Cpu = {}
    for (const k of Object.keys(cpuB)) cpu[k] = cpuA[k] === undefined || cpuB[k] === undefined ? undefined : cpuB[k]! - cpuA[k]!
    cpu.keeper = r.keeper.cpuMs
    const replay = r.jobId === undefined ? undefined : await followSse(client, r.jobId, AbortSignal.any([signal, AbortSignal.timeout(opts.jobLimitS * 1000)]))
    const result: JobResult = {
      spec,
      outputLines,
      jobId: r.jobId,
      expectedFailing,
      maxErrors,
      keeper: r.keeper,
      sse: r.sse,
      replay,
      queenMem: await memStatus(queen.pid),
      hiveMem: await memStatus(hive.pid),
      cpu,
      problems: [],
    }
    result.problems = check(result, N)
    results.jobs.push(result)
    if (results.signing === undefined) {
      progress(`measuring what signed work costs at ${N} nodes`)
      results.signing = measureSigning(N)
    }
    const fin = r.sse.fin ?? r.keeper.finished
    progress(
      `  job ${spec.name} ${r.jobId ?? '?'}: ${fin ? `${fin.state} in ${fmt(fin.durationMs / 1000, 2)} s: ${countsText(fin.counts)}${fin.stopReason ? ` (stopped: ${fin.stopReason})` : ''}` : 'no job.finished'}; ` +
        `keeper exit ${r.keeper.code}, ${r.keeper.lines} lines, peak ${fmt(r.keeper.peakMb)} MB` +
        (result.problems.length ? `; PROBLEMS: ${result.problems.join('; ')}` : ''),
    )
    // Let the queen and hive settle (watchdogs, log flushes) before the next job.
    await sleep(1000, signal)
  }
  results.natsMem = natsPid === undefined ? undefined : await memStatus(natsPid)
}

/** One job: keeper submits and follows it; this process follows the same job over SSE. */
async function oneJob(
  spec: JobSpec,
  ctx: { client: JobClient; queenUrl: string; tokenFile: string; keeperDir: string; nodeFlags: string[]; entry: string; jobLimitMs: number; signal: AbortSignal },
): Promise<{ jobId: string | undefined; keeper: KeeperResult; sse: SseResult }> {
  let gotJobId!: (id: string) => void
  const jobIdKnown = new Promise<string>((r) => (gotJobId = r))
  const sseStop = new AbortController()
  const keeperP = runKeeper({
    args: [
      'run',
      '--queen',
      ctx.queenUrl,
      '--token-file',
      ctx.tokenFile,
      '--state-dir',
      ctx.keeperDir,
      '--targets',
      `region=${REGION}`,
      '--concurrency',
      CONCURRENCY,
      '--max-errors',
      MAX_ERRORS,
      '-o',
      spec.format,
      ...(spec.noGroup ? ['--no-group'] : []),
      '--',
      'true',
    ],
    format: spec.format,
    env: {},
    nodeFlags: ctx.nodeFlags,
    entry: ctx.entry,
    scratchDir: ctx.keeperDir,
    timeoutMs: ctx.jobLimitMs,
    signal: ctx.signal,
    onJobId: (id) => gotJobId(id),
  })
  // Keeper may die before it names the job: then there is nothing to follow.
  const settled = keeperP.then(
    () => undefined,
    () => undefined,
  )
  const jobId = await Promise.race([jobIdKnown, settled])
  const sseP: Promise<SseResult> = jobId === undefined ? Promise.resolve({ events: 0, spanMs: 0, totalMs: 0, gapless: false, fin: undefined, error: 'keeper never named the job' }) : followSse(ctx.client, jobId, AbortSignal.any([ctx.signal, sseStop.signal, AbortSignal.timeout(ctx.jobLimitMs)]))
  let keeper: KeeperResult
  try {
    keeper = await keeperP
  } catch (err) {
    sseStop.abort()
    await sseP
    throw err
  }
  const sse = await sseP
  return { jobId, keeper, sse }
}

/** Follows a job's SSE stream (with output, as keeper -o ndjson does) to job.finished, counting events. */
async function followSse(client: JobClient, jobId: string, signal: AbortSignal): Promise<SseResult> {
  const opened = performance.now()
  let events = 0
  let first = 0
  let last = 0
  let gapless = true
  let fin: SseResult['fin']
  try {
    for await (const ev of client.stream(jobId, { output: true, signal })) {
      const now = performance.now()
      if (events === 0) first = now
      events++
      if (ev.seq !== events) gapless = false
      last = now
      if (ev.kind === 'job.finished') {
        fin = { seq: ev.seq, counts: ev.counts, stopReason: ev.stopReason, durationMs: ev.durationMs, state: ev.state, groups: ev.groups.length }
      }
    }
  } catch (err) {
    return { events, spanMs: last - first, totalMs: last - opened, gapless, fin, error: errorMessage(err) }
  }
  return { events, spanMs: last - first, totalMs: last - opened, gapless, fin, error: signal.aborted && !fin ? 'stopped before job.finished' : undefined }
}

function check(r: JobResult, n: number): string[] {
  const p: string[] = []
  const fin = r.sse.fin
  if (r.sse.error) p.push(`SSE: ${r.sse.error}`)
  if (!fin) {
    p.push('no job.finished on the SSE stream')
    return p
  }
  const sum = Object.entries(fin.counts).reduce((s, [, c]) => s + c, 0)
  if (sum !== n) p.push(`counts sum to ${sum}, not ${n}`)
  if (!r.sse.gapless) p.push('SSE sequence numbers not gapless')
  if (r.spec.mustStop) {
    if (!/^max errors reached/.test(fin.stopReason ?? '')) p.push(`did not stop on the error budget (stopReason ${JSON.stringify(fin.stopReason)})`)
    if ((fin.counts.skipped ?? 0) === 0) p.push('nothing skipped')
    if ((fin.counts.failed ?? 0) < r.maxErrors) p.push(`stopped with ${fin.counts.failed ?? 0} failed, below the budget of ${r.maxErrors}`)
  } else {
    if (fin.stopReason !== null) p.push(`stopped early: ${fin.stopReason}`)
    if ((fin.counts.failed ?? 0) !== r.expectedFailing) p.push(`${fin.counts.failed ?? 0} failed, expected ${r.expectedFailing}`)
    if ((fin.counts.ok ?? 0) !== n - r.expectedFailing) p.push(`${fin.counts.ok ?? 0} ok, expected ${n - r.expectedFailing}`)
  }
  const k = r.keeper
  if (k.code !== 1) p.push(`keeper exited ${k.code ?? k.signal}, expected 1 (some node not ok)`)
  if (r.spec.format === 'ndjson') {
    if (k.badLines > 0) p.push(`keeper printed ${k.badLines} lines that are not events`)
    if (!k.gapless) p.push('keeper’s events not gapless from seq 1')
    if (k.events !== fin.seq) p.push(`keeper printed ${k.events} events, the job has ${fin.seq}`)
    if (k.events !== r.sse.events) p.push(`keeper printed ${k.events} events, SSE delivered ${r.sse.events}`)
    if (!k.finished) p.push('keeper printed no job.finished')
  } else {
    // On a pipe with --no-group: a line per node's end and per output line, plus the summary.
    if (k.lines < n) p.push(`keeper printed ${k.lines} lines, fewer than the ${n} nodes`)
  }
  return p
}

function countsText(counts: Record<string, number>): string {
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([s, c]) => `${c} ${s}`)
    .join(', ')
}

function report(r: Partial<Results>, opts: Opts): string {
  const jobs = r.jobs ?? []
  const lines: string[] = []
  let natsVersion = 'unknown'
  try {
    natsVersion = execFileSync('nats-server', ['--version'], { encoding: 'utf8' }).trim()
  } catch {
    // leave unknown
  }
  const verdict = (ok: boolean, known: boolean) => (!known ? 'n/a' : ok ? 'PASS' : 'MISS')
  lines.push('')
  lines.push(`apiary rollout benchmark: keeper run --concurrency ${CONCURRENCY} --max-errors ${MAX_ERRORS} -- true on ${opts.nodes} simulated agent nodes`)
  lines.push(`machine: ${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown cpu'}), ${fmt(totalmem() / 1e9)} GB RAM, node ${process.version}, ${natsVersion}`)
  lines.push(
    `topology: nats-server, queen, 1 hive, ${opts.nodes} simulated nodes in ${Math.min(opts.procs, opts.nodes)} processes (${NODES_PER_CONNECTION} nodes per NATS connection), ` +
      `heartbeat ${opts.heartbeatMs} ms, task duration ${opts.durationMs} ms; keeper and this process follow each job over SSE (with output)`,
  )
  if (opts.keeperEntry !== join(ROOT, 'packages/keeper/bin/keeper.mjs') || opts.keeperFlags.length > 0) {
    lines.push(`keeper: node ${[...opts.keeperFlags, opts.keeperEntry].join(' ')} (not the default bin)`)
  }
  if (r.onlineS !== undefined) lines.push(`all ${opts.nodes} nodes online ${fmt(r.onlineS)} s after the fleet started (${fmt(r.startupS ?? NaN)} s after the benchmark did)`)
  lines.push('')
  if (jobs.length > 0) {
    const mb = (m: MemStatus | undefined) => (m ? fmt(m.peakMb) : 'n/a')
    lines.push(
      table([
        ['job', 'fail %', 'lines/node', 'keeper', 'submit→finished s', 'ok', 'failed', 'skipped', 'other', 'stop reason'],
        ...jobs.map((j) => {
          const fin = j.sse.fin ?? j.keeper.finished
          const c = fin?.counts ?? {}
          const other = Object.entries(c)
            .filter(([s]) => s !== 'ok' && s !== 'failed' && s !== 'skipped')
            .reduce((s, [, n]) => s + n, 0)
          return [
            j.spec.name,
            fmt(j.spec.failRate * 100),
            String(j.outputLines),
            `${j.spec.format}${j.spec.noGroup ? ' --no-group' : ''}`,
            fin ? fmt(fin.durationMs / 1000, 2) : 'n/a',
            String(c.ok ?? 0),
            String(c.failed ?? 0),
            String(c.skipped ?? 0),
            String(other),
            fin?.stopReason ?? '—',
          ]
        }),
      ]),
    )
    lines.push('')
    lines.push(
      table([
        ['job', 'SSE events', 'live ev/s', 'replay ev/s', 'keeper lines', 'keeper wall s', 'queen peak MB', 'keeper peak MB', 'keeper RSS slope MB/10k lines'],
        ...jobs.map((j) => [
          j.spec.name,
          String(j.sse.events),
          j.sse.spanMs > 0 ? fmt(j.sse.events / (j.sse.spanMs / 1000), 0) : 'n/a',
          j.replay && j.replay.totalMs > 0 && !j.replay.error ? fmt(j.replay.events / (j.replay.totalMs / 1000), 0) : 'n/a',
          String(j.keeper.lines),
          fmt(j.keeper.wallMs / 1000, 2),
          mb(j.queenMem),
          `${fmt(j.keeper.peakMb)}${j.keeper.peakExact ? '' : '*'}`,
          fmt(rssSlope(j.keeper.samples, j.keeper.lines), 2),
        ]),
      ]),
    )
    lines.push(
      'submit→finished: job.finished durationMs (the queen’s clock, POST to the last node’s end); live ev/s: events this process received following the job ' +
        'over SSE with output, first event → job.finished; replay ev/s: the finished job’s whole stream read again by one client; queen peak: VmHWM after the job',
    )
    lines.push('')
    const queenPeak = Math.max(...jobs.map((j) => j.queenMem?.peakMb ?? NaN))
    const keeperPeak = Math.max(...jobs.map((j) => j.keeper.peakMb))
    const a = jobs.find((j) => j.spec.name === 'A')
    const a2 = jobs.find((j) => j.spec.name === "A'")
    const a3 = jobs.find((j) => j.spec.name === "A''")
    const b = jobs.find((j) => j.spec.name === 'B')
    // Peak RSS rise from A' to A'': the same job and keeper mode, many more lines printed.
    const rise = a2 && a3 && a3.keeper.lines > a2.keeper.lines ? a3.keeper.peakMb - a2.keeper.peakMb : NaN
    const perLine = a2 && a3 ? (rise * 1e6) / (a3.keeper.lines - a2.keeper.lines) : NaN
    const bFin = b?.sse.fin
    const streamed = jobs.filter((j) => j.spec.format === 'ndjson')
    lines.push(
      table([
        ['goal', 'measured', 'verdict'],
        [`queen peak RSS < ${GOAL_QUEEN_MB} MB`, `${fmt(queenPeak)} MB`, verdict(queenPeak < GOAL_QUEEN_MB, Number.isFinite(queenPeak))],
        [`keeper peak RSS < ${GOAL_KEEPER_MB} MB`, `${fmt(keeperPeak)} MB`, verdict(keeperPeak < GOAL_KEEPER_MB, Number.isFinite(keeperPeak))],
        [
          `job A finishes all ${opts.nodes} nodes, ~0.5% failed, no stop`,
          a?.sse.fin ? countsText(a.sse.fin.counts) : 'n/a',
          verdict(a !== undefined && jobs.filter((j) => !j.spec.mustStop).every((j) => j.problems.length === 0), a !== undefined),
        ],
        [
          'job B stops early on the error budget',
          bFin ? `${bFin.stopReason ?? 'no stop'}; ${countsText(bFin.counts)}` : 'n/a',
          verdict(b !== undefined && jobs.filter((j) => j.spec.mustStop).every((j) => j.problems.length === 0), b !== undefined),
        ],
        [
          'keeper -o ndjson prints the whole stream',
          streamed.map((j) => `${j.spec.name}: ${j.keeper.events} of ${j.sse.fin?.seq ?? '?'}`).join(', '),
          verdict(streamed.every((j) => j.keeper.gapless && j.keeper.events === j.sse.fin?.seq), streamed.length > 0),
        ],
        [
          `keeper peak flat in lines printed (A'' − A' < ${GOAL_LINES_MB} MB)`,
          `${fmt(rise)} MB (${fmt(perLine, 0)} bytes per extra line): A'' ${a3?.keeper.lines ?? '?'} lines, peak ${fmt(a3?.keeper.peakMb ?? NaN)} MB; A' ${a2?.keeper.lines ?? '?'} lines, peak ${fmt(a2?.keeper.peakMb ?? NaN)} MB`,
          verdict(rise < GOAL_LINES_MB, Number.isFinite(rise)),
        ],
      ]),
    )
    lines.push('')
    const who = ['queen', 'hive', 'nats-server', 'fleet', 'keeper', 'bench']
    lines.push(
      table([
        ['CPU s per job', ...who],
        ...jobs.map((j) => [j.spec.name, ...who.map((k) => fmt((j.cpu[k] ?? NaN) / 1000, 1))]),
      ]),
    )
    lines.push('')
    lines.push(
      table([
        ['memory (MB = 10^6 bytes)', 'peak (VmHWM)', 'now (VmRSS)'],
        ['queen (after the last job)', fmt(jobs.at(-1)?.queenMem?.peakMb ?? NaN), fmt(jobs.at(-1)?.queenMem?.rssMb ?? NaN)],
        ['hive (after the last job)', fmt(jobs.at(-1)?.hiveMem?.peakMb ?? NaN), fmt(jobs.at(-1)?.hiveMem?.rssMb ?? NaN)],
        ['nats-server', fmt(r.natsMem?.peakMb ?? NaN), fmt(r.natsMem?.rssMb ?? NaN)],
        ...(r.fleetMem ?? []).map((m, i) => [`fleet host ${i}`, fmt(m ?? NaN), '—']),
        ['this process', fmt(process.resourceUsage().maxRSS / 1000), fmt(process.memoryUsage.rss() / 1e6)],
      ]),
    )
    if (r.fleetEvents !== undefined) lines.push(`the fleet published ${r.fleetEvents} events in all`)
    if (r.signing) {
      lines.push('')
      lines.push(signingReport(r.signing, { queenCpuMs: jobs[0]?.cpu.queen, hiveCpuMs: jobs[0]?.cpu.hive }))
      lines.push('(the job is A; the queen signs each share once, so without signing its CPU would be the difference; a worker checks one task per job)')
    }
    lines.push('')
    lines.push(
      `keeper peak: exact (maxRSS at exit)${jobs.some((j) => !j.keeper.peakExact) ? '; * = last VmHWM sampled (exit hook gave nothing)' : ''}; ` +
        'RSS slope: least squares of keeper RSS (sampled every 100 ms) on lines printed, after the first quarter of the lines; garbage not yet collected counts, so short runs are noisy',
    )
    for (const j of jobs) {
      const top = j.keeper.samples.reduce<RssSample | undefined>((m, x) => (m === undefined || x.rssMb > m.rssMb ? x : m), undefined)
      lines.push(
        `job ${j.spec.name}: ${j.jobId ?? '?'}; SSE ${j.sse.events} events in ${fmt(j.sse.spanMs / 1000, 2)} s; keeper wall ${fmt(j.keeper.wallMs / 1000, 2)} s, exit ${j.keeper.code}, ` +
          `${j.keeper.bytes} bytes printed; keeper's largest RSS sample ${top ? `${fmt(top.rssMb)} MB = ${fmt(top.anonMb)} anon + ${fmt(top.fileMb)} file-backed` : 'n/a'}`,
      )
      for (const p of j.problems) lines.push(`  PROBLEM: ${p}`)
    }
    const a2Tail = a3?.keeper.tail.slice(-8)
    if (a2Tail?.length) {
      lines.push('')
      lines.push("keeper -o text --no-group, last lines (job A''):")
      for (const l of a2Tail) lines.push(`  ${l}`)
    }
  }
  return lines.join('\n')
}

/** This benchmark's flags for a child run: all but --before, --pairs and --keeper-*; profiles apart per run. */
function childArgs(o: Opts, tree: Tree, pair: number): string[] {
  const args = ['--nodes', o.nodes, '--procs', o.procs, '--duration', o.durationMs, '--many-lines', o.manyLines, '--rounds', o.rounds, '--heartbeat', o.heartbeatMs, '--job-limit', o.jobLimitS, '--time-limit', o.timeLimitS].map(String)
  if (o.profileDir) args.push('--profile', join(o.profileDir, `${tree}-${pair}`))
  return args
}

/** What the comparison reads from one run's report, for one job. */
interface JobFigures {
  wallS: number
  queenCpuS: number
  hiveCpuS: number
  natsCpuS: number
  queenPeakMb: number
}

const COMPARED_JOBS = ['A', 'B']

function jobFigures(report: string, job: string): JobFigures {
  const jobs = readTable(report, 'job', 'submit→finished s')
  const sse = readTable(report, 'job', 'SSE events')
  const cpu = readTable(report, 'CPU s per job')
  return {
    wallS: cell(jobs, job, 'submit→finished s'),
    queenCpuS: cell(cpu, job, 'queen'),
    hiveCpuS: cell(cpu, job, 'hive'),
    natsCpuS: cell(cpu, job, 'nats-server'),
    queenPeakMb: cell(sse, job, 'queen peak MB'),
  }
}

function queenMemory(report: string): { peakMb: number; rssMb: number } {
  const mem = readTable(report, 'memory (MB')
  return { peakMb: cell(mem, 'queen (after the last job)', 'peak (VmHWM)'), rssMb: cell(mem, 'queen (after the last job)', 'now (VmRSS)') }
}

function compareReport(o: Opts, runs: TreeRun[]): string {
  const lines: string[] = ['', `before/now: bench:rollout at ${o.nodes} nodes, ${o.pairs} run(s) in each checkout, alternating; before = ${o.before}`, '']
  for (const r of runs) lines.push(`--- ${r.tree} ${r.pair} ---`, r.stdout.trim(), '')
  lines.push(
    table([
      ['run', 'job', 'submit→finished s', 'queen CPU s', 'hive CPU s', 'nats-server CPU s', 'queen peak MB'],
      ...runs.flatMap((r) =>
        COMPARED_JOBS.map((job) => {
          const f = jobFigures(r.stdout, job)
          return [`${r.tree} ${r.pair}`, job, fmt(f.wallS, 2), fmt(f.queenCpuS), fmt(f.hiveCpuS), fmt(f.natsCpuS), fmt(f.queenPeakMb)]
        }),
      ),
    ]),
  )
  lines.push('')
  const rows: string[][] = [['pair', 'job', 'wall now/before', 'queen CPU now/before', 'nats-server CPU now/before', 'queen peak now/before']]
  for (const job of COMPARED_JOBS) {
    for (const { pair, before, now } of byPair(runs, (report) => jobFigures(report, job))) {
      rows.push([String(pair), job, times(now.wallS, before.wallS), times(now.queenCpuS, before.queenCpuS), times(now.natsCpuS, before.natsCpuS), times(now.queenPeakMb, before.queenPeakMb)])
    }
  }
  lines.push(table(rows))
  lines.push('')
  lines.push(
    table([
      ['queen after the last job (MB)', 'peak (VmHWM)', 'now (VmRSS)'],
      ...runs.map((r) => {
        const m = queenMemory(r.stdout)
        return [`${r.tree} ${r.pair}`, fmt(m.peakMb), fmt(m.rssMb)]
      }),
    ]),
  )
  return lines.join('\n')
}

async function main(): Promise<number> {
  const o = optionsOrExit('bench:rollout', USAGE, parseOpts)
  if (typeof o === 'number') return o
  if (o.before !== undefined) {
    const before = o.before
    const { result: runs } = await runBench('bench:rollout --before', o.timeLimitS * 2 * o.pairs, (ctx) => runBeforeAndNow('bench:rollout', (tree, pair) => childArgs(o, tree, pair), before, o.pairs, ctx))
    if (runs) process.stdout.write(`${compareReport(o, runs)}\n`)
    return runs ? 0 : 1
  }
  const results: Partial<Results> = { opts: o }
  const { failed } = await runBench('bench:rollout', o.timeLimitS, (ctx) => run(o, ctx, results))
  const code = failed || (results.jobs ?? []).some((j) => j.problems.length > 0) ? 1 : 0
  process.stdout.write(`${report(results, o)}\n`)
  return code
}

process.exit(await main())
