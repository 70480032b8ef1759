/**
 * SSH fan-out benchmark: `true` and `uname -n` on N real OpenSSH nodes on loopback through
 * apiary's SSH executor (the worker's connection pool and `runSsh`, in this process, as an SSH
 * worker runs them), cold (an empty pool: a new connection per node) and warm (pooled), next to
 * `pdsh -R ssh` and `clush` at the same fanout, in the same run.
 *
 *   pnpm bench:ssh-fanout [--nodes N] [--fanout F] [--reps R] [--warm W]
 *
 * The nodes come from the test harness (`startSshd`: one sshd per 16 loopback addresses, each
 * address a node). The peers' OpenSSH client is pinned to the key exchange apiary negotiates
 * (found by a probe connection first), uses the harness key and known_hosts with strict
 * checking, and never prompts. pdsh and clush are installed from Debian's packages when absent.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { availableParallelism, cpus, hostname, totalmem } from 'node:os'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { SshPool } from '@apiary/worker'
import { type Sshd, startSshd } from '../../test/harness/sshd.ts'
import { tempDir } from '../../test/harness/temp.ts'
import { apiaryRound, type ApiaryTarget, benchPool, type Negotiated, negotiated } from './apiary.ts'
import type { Outcome } from './outcome.ts'
import { ensurePeers, peerCommand, type PeerName, peerRound, type PeerSetup, versions, writePeerSetup } from './peers.ts'
import { busyShare, type MemStatus, memStatus } from '../lib/procfs.ts'
import { benchArgs, optionsOrExit, wholeNumber } from '../lib/args.ts'
import { progress, runBench } from '../lib/run.ts'
import { fmt, median, table } from '../lib/stats.ts'
import { sleep } from '../lib/wait.ts'
import type { Teardown } from '../lib/teardown.ts'

const GOAL_COLD_VS_PEER = 1
const GOAL_WARM_SPEEDUP = 5

const USAGE = `bench:ssh-fanout — apiary's SSH executor beside pdsh and clush on real sshd nodes, same run

usage: pnpm bench:ssh-fanout [--nodes N] [--fanout F] [--reps R] [--warm W] [--no-peers] [--profile DIR] [--time-limit S]

  --nodes N        loopback sshd nodes (one sshd per 16), default 1000
  --fanout F       commands in flight at once, for every tool (apiary's window, pdsh -f,
                   clush -f), default 256 (capped at N)
  --reps R         repetitions of each (tool, command), default 3; times are medians
  --warm W         warm apiary rounds after each cold one, default 3
  --no-peers       apiary only (no pdsh, no clush, nothing installed)
  --profile DIR    CPU-profile apiary's rounds (this process) into DIR/*.cpuprofile; the
                   profiler slows the rounds it records
  --time-limit S   abort with an error after S seconds in all, default 1800
  -h, --help       show this help

Commands: \`true\` (every tool: ok when the tool reports no failure for the node) and
\`uname -n\` (ok when the node answered this machine's host name). apiary cold = a new pool
per round (one new SSH connection per node); warm = the same pool again (pooled connections).
`

interface Opts {
  nodes: number
  fanout: number
  reps: number
  warm: number
  peers: boolean
  profileDir: string | undefined
  timeLimitS: number
}

function parseOpts(argv: string[]): Opts | 'help' {
  const { values } = parseArgs({
    args: benchArgs(argv),
    options: {
      nodes: { type: 'string', default: '1000' },
      fanout: { type: 'string', default: '256' },
      reps: { type: 'string', default: '3' },
      warm: { type: 'string', default: '3' },
      'no-peers': { type: 'boolean', default: false },
      profile: { type: 'string' },
      'time-limit': { type: 'string', default: '1800' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  })
  if (values.help) return 'help'
  const nodes = wholeNumber(values.nodes, '--nodes', 1, 20_000)
  return {
    nodes,
    fanout: Math.min(nodes, wholeNumber(values.fanout, '--fanout', 1, 20_000)),
    reps: wholeNumber(values.reps, '--reps', 1, 100),
    warm: wholeNumber(values.warm, '--warm', 1, 100),
    peers: !values['no-peers'],
    profileDir: values.profile === undefined ? undefined : resolve(values.profile),
    timeLimitS: wholeNumber(values['time-limit'], '--time-limit', 10, 24 * 3600),
  }
}


type Tool = 'apiary cold' | 'apiary warm' | PeerName
interface Cmd {
  label: string
  argv: string[]
}
interface Row {
  tool: Tool
  cmd: string
  outcome: Outcome
}

interface MemoryFigures {
  /** Bench process (the in-process SSH worker) VmHWM and VmRSS at the end. */
  self: MemStatus | undefined
  /** RSS growth over the first cold round, per connection it left open. */
  rssPerConn: number
  /** Heap + external + array buffers growth after GC, per connection, median over cold rounds. */
  heapPerConn: number
  connections: number
}

interface Results {
  opts: Opts
  rows: Row[]
  memory: MemoryFigures
  negotiated: Negotiated
  sshdStartS: number
  servers: number
  versions: string[]
  skippedPeers: string[]
  peerLines: string[]
  /** Share of the machine's CPU busy in the second before the run, and in the one after it. */
  busy: { before: number; after: number }
}

/** Forces a full GC (exposed at run time, since the package script passes no node flags). */
const gc: () => void = (() => {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
})()

function heapNow(): number {
  const m = process.memoryUsage()
  return m.heapUsed + m.external + m.arrayBuffers
}

async function run(opts: Opts, signal: AbortSignal, teardown: Teardown): Promise<Results> {
  const N = opts.nodes
  // Everything here shares the machine's cores: other work skews every figure.
  const busyBefore = await busyShare(1000)
  if (busyBefore > 0.1) progress(`warning: the machine was ${(busyBefore * 100).toFixed(0)}% busy before the run — other work will skew the figures`)

  let tools: PeerName[] = []
  let skippedPeers: string[] = []
  if (opts.peers) {
    ;({ tools, skipped: skippedPeers } = await ensurePeers(progress))
    for (const s of skippedPeers) progress(`peers: ${s}`)
  }

  progress(`starting ${N} sshd nodes (${Math.ceil(N / 16)} sshd processes, 16 addresses each)`)
  const t0 = performance.now()
  let sshd: Sshd | undefined
  teardown.add('sshd servers', async () => sshd?.stop())
  sshd = await startSshd({ nodes: N })
  const sshdStartS = (performance.now() - t0) / 1000
  progress(`sshd nodes up in ${sshdStartS.toFixed(1)} s`)
  signal.throwIfAborted()

  const target: ApiaryTarget = { nodes: sshd.nodes, user: sshd.user, knownHosts: sshd.knownHosts, keyFile: sshd.keyFile }
  const neg = await negotiated(target, sshd.nodes[0]!)
  progress(`apiary (ssh2) negotiates kex ${neg.kex}, host key ${neg.hostKey}, cipher ${neg.cipher}; peers pinned to KexAlgorithms=${neg.kex}`)

  const work = await tempDir('bench-ssh-fanout')
  teardown.add('work dir', () => work.remove())
  let setup: PeerSetup | undefined
  const peerLines: string[] = []
  if (tools.length > 0) {
    setup = await writePeerSetup(work.path, sshd.nodes, { user: sshd.user, keyFile: sshd.keyFile, knownHosts: sshd.knownHosts, kex: neg.kex })
    for (const t of tools) {
      const { argv, env } = peerCommand(t, setup, opts.fanout, 'true')
      peerLines.push(`${t === 'pdsh' ? `PDSH_SSH_ARGS_APPEND='${env.PDSH_SSH_ARGS_APPEND ?? ''}' ` : ''}${argv.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ')}`)
    }
    peerLines.push(`(${setup.configFile} maps each address to its sshd's port)`)
  }

  const me = hostname()
  const cmds: Cmd[] = [
    { label: 'true', argv: ['true'] },
    { label: 'uname -n', argv: ['uname', '-n'] },
  ]
  const expectOut = (c: Cmd) => (c.label === 'true' ? (s: string) => s === '' : (s: string) => s === `${me}\n`)
  const limitMs = Math.max(60_000, N * 100)
  const rows: Row[] = []
  const heapPerConn: number[] = []
  let rssPerConn = Number.NaN
  let connections = 0

  let profiler: Session | undefined
  if (opts.profileDir) {
    mkdirSync(opts.profileDir, { recursive: true })
    profiler = new Session()
    profiler.connect()
    await profiler.post('Profiler.enable')
    teardown.add('profiler', async () => profiler?.disconnect())
  }
  const profiled = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    if (!profiler) return fn()
    await profiler.post('Profiler.start')
    try {
      return await fn()
    } finally {
      const { profile } = await profiler.post('Profiler.stop')
      writeFileSync(resolve(opts.profileDir!, `${name}.cpuprofile`), JSON.stringify(profile))
    }
  }

  const note = (tool: string, c: Cmd, r: number, o: Outcome) => {
    const why = [...o.failures].map(([k, v]) => `${v}× ${k}`).join('; ')
    progress(
      `  ${tool.padEnd(11)} ${c.label.padEnd(8)} rep ${r}: ${fmt(o.ms, 0).padStart(7)} ms  ${o.ok}/${o.total} ok  client cpu ${fmt(o.cpuMs, 0)} ms, machine ${fmt(o.machineCpuMs, 0)} ms${why ? `  NOT OK: ${why.slice(0, 300)}` : ''}`,
    )
  }

  // Untimed warm-up on a few nodes, so the first timed round does not pay for loading and
  // compiling code (the peers' binaries are just as warm in the page cache), and the memory
  // growth of the first cold round is the connections', not the code's.
  {
    const few: ApiaryTarget = { ...target, nodes: sshd.nodes.slice(0, Math.min(16, N)) }
    const pool = benchPool(few)
    try {
      for (const c of cmds) for (let i = 0; i < 2; i++) await apiaryRound(pool, few, c.argv, expectOut(c), opts.fanout, limitMs, signal)
    } finally {
      await pool.close()
    }
  }

  for (let r = 1; r <= opts.reps; r++) {
    for (const c of cmds) {
      signal.throwIfAborted()
      const slug = c.label.replace(/\W+/g, '-')
      // Cold: a pool as a fresh worker has it.
      gc()
      const rss0 = process.memoryUsage().rss
      const heap0 = heapNow()
      const pool: SshPool = benchPool(target)
      try {
        const cold = await profiled(`cold-${slug}-${r}`, () => apiaryRound(pool, target, c.argv, expectOut(c), opts.fanout, limitMs, signal))
        rows.push({ tool: 'apiary cold', cmd: c.label, outcome: cold })
        note('apiary cold', c, r, cold)
        gc()
        const conns = pool.stats().connections
        if (conns > 0) {
          heapPerConn.push((heapNow() - heap0) / conns)
          if (Number.isNaN(rssPerConn)) rssPerConn = (process.memoryUsage().rss - rss0) / conns
          connections = conns
        }
        for (let w = 1; w <= opts.warm; w++) {
          const warm = await profiled(`warm-${slug}-${r}-${w}`, () => apiaryRound(pool, target, c.argv, expectOut(c), opts.fanout, limitMs, signal))
          rows.push({ tool: 'apiary warm', cmd: c.label, outcome: warm })
          note('apiary warm', c, r, warm)
        }
      } finally {
        await pool.close()
      }
      await sleep(500, signal)
      for (const t of tools) {
        const o = await peerRound(t, setup!, sshd.nodes, opts.fanout, c.argv.join(' '), c.label === 'true' ? undefined : me, limitMs, signal)
        rows.push({ tool: t, cmd: c.label, outcome: o })
        note(t, c, r, o)
        await sleep(500, signal)
      }
    }
  }

  return {
    opts,
    rows,
    memory: { self: await memStatus(process.pid), rssPerConn, heapPerConn: median(heapPerConn), connections },
    negotiated: neg,
    sshdStartS,
    servers: Math.ceil(N / 16),
    versions: await versions(tools),
    skippedPeers,
    peerLines,
    busy: { before: busyBefore, after: await busyShare(1000) },
  }
}

function report(r: Results): string {
  const N = r.opts.nodes
  const lines: string[] = []
  const of = (tool: Tool, cmd: string) => r.rows.filter((x) => x.tool === tool && x.cmd === cmd).map((x) => x.outcome)
  const allOk = (os: Outcome[]) => os.length > 0 && os.every((o) => o.ok === o.total)
  const med = (os: Outcome[]) => median(os.map((o) => o.ms))
  const cpuModel = cpus()[0]?.model.trim() ?? 'unknown cpu'
  lines.push('')
  lines.push(`apiary SSH fan-out benchmark: ${N} real sshd nodes on loopback, fanout ${r.opts.fanout}, ${r.opts.reps} reps (apiary warm: ${r.opts.warm} rounds after each cold one)`)
  lines.push(
    `machine: ${availableParallelism()} cores (${cpuModel}), ${fmt(totalmem() / 1e9)} GB RAM, node ${process.version}; CPU busy in the second before the run ${fmt(r.busy.before * 100, 0)}%, after it ${fmt(r.busy.after * 100, 0)}%` +
      ' (nodes, tools and the bench share these cores)',
  )
  lines.push(`servers: ${r.servers} sshd processes (16 addresses each), up in ${fmt(r.sshdStartS)} s; ${r.versions.join('; ')}`)
  lines.push(`negotiated by apiary (ssh2): kex ${r.negotiated.kex}, host key ${r.negotiated.hostKey}, cipher ${r.negotiated.cipher}, mac ${r.negotiated.mac}; peers pinned to that kex`)
  for (const s of r.skippedPeers) lines.push(`peers skipped: ${s}`)
  lines.push('')
  const rows: string[][] = [['tool', 'command', 'wall median ms', 'min–max ms', 'client CPU ms', 'machine CPU ms', 'successes (worst run)', 'runs']]
  const tools: Tool[] = ['apiary cold', 'apiary warm', 'pdsh', 'clush']
  for (const cmd of ['true', 'uname -n']) {
    for (const t of tools) {
      const os = of(t, cmd)
      if (os.length === 0) continue
      const ms = os.map((o) => o.ms)
      const worst = Math.min(...os.map((o) => o.ok))
      rows.push([
        t,
        cmd,
        fmt(med(os), 0),
        `${fmt(Math.min(...ms), 0)}–${fmt(Math.max(...ms), 0)}`,
        fmt(median(os.map((o) => o.cpuMs)), 0),
        fmt(median(os.map((o) => o.machineCpuMs)), 0),
        `${worst}/${N}`,
        String(os.length),
      ])
    }
  }
  lines.push(table(rows))
  lines.push(
    'client CPU: this process (apiary) or the tool with its ssh processes (peers); machine CPU: all cores, busy time during the round (client + sshd + kernel). CPU figures are medians.',
  )
  lines.push('')

  const verdict = (ok: boolean | undefined) => (ok === undefined ? 'n/a' : ok ? 'PASS' : 'MISS')
  const goals: string[][] = [['goal', 'command', 'measured', 'verdict']]
  for (const cmd of ['true', 'uname -n']) {
    const cold = of('apiary cold', cmd)
    const warm = of('apiary warm', cmd)
    const ran = (['pdsh', 'clush'] as const).map((t) => ({ t, os: of(t, cmd) })).filter((p) => p.os.length > 0)
    const peers = ran.filter((p) => allOk(p.os))
    const fastest = peers.sort((a, b) => med(a.os) - med(b.os))[0]
    const coldOk = allOk(cold)
    goals.push([
      'apiary cold faster than the fastest peer',
      cmd,
      fastest ? `${fmt(med(cold), 0)} ms vs ${fastest.t} ${fmt(med(fastest.os), 0)} ms (${fmt(med(fastest.os) / med(cold), 2)}x)` : ran.length === 0 ? 'no peer ran' : 'no peer had every node ok',
      verdict(fastest && coldOk ? med(cold) * GOAL_COLD_VS_PEER < med(fastest.os) : undefined),
    ])
    const speedup = med(cold) / med(warm)
    goals.push([
      `apiary warm ≥ ${GOAL_WARM_SPEEDUP}x faster than cold`,
      cmd,
      `${fmt(med(cold), 0)} / ${fmt(med(warm), 0)} ms = ${fmt(speedup, 2)}x`,
      verdict(coldOk && allOk(warm) ? speedup >= GOAL_WARM_SPEEDUP : undefined),
    ])
  }
  lines.push(table(goals))
  lines.push('')
  const m = r.memory
  lines.push(
    table([
      ['worker memory (the bench process; MB = 10^6 bytes)', 'value'],
      ['peak RSS (VmHWM) over the whole run', m.self ? `${fmt(m.self.peakMb)} MB` : 'n/a'],
      [`RSS growth per connection (first timed cold round, ${m.connections} connections left open)`, `${fmt(m.rssPerConn / 1e3)} kB`],
      ['heap + external per connection after GC (median of cold rounds)', `${fmt(m.heapPerConn / 1e3)} kB`],
    ]),
  )
  lines.push('')
  if (r.peerLines.length) lines.push(`peer command lines:\n  ${r.peerLines.join('\n  ')}`)
  const notOk = r.rows.filter((x) => x.outcome.ok !== x.outcome.total)
  for (const x of notOk) lines.push(`not every node ok: ${x.tool} ${x.cmd}: ${[...x.outcome.failures].map(([k, v]) => `${v}× ${k}`).join('; ').slice(0, 400)}`)
  return lines.join('\n')
}

async function main(): Promise<number> {
  const o = optionsOrExit('bench:ssh-fanout', USAGE, parseOpts)
  if (typeof o === 'number') return o
  const { result: results } = await runBench('bench:ssh-fanout', o.timeLimitS, ({ signal, teardown }) => run(o, signal, teardown))
  const code = results ? 0 : 1
  if (results) process.stdout.write(`${report(results)}\n`)
  return code
}

process.exit(await main())
