import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cpuMs, statusMb } from '../lib/procfs.ts'
import { ROOT } from '../lib/roles.ts'

const PEAK_HOOK = fileURLToPath(new URL('./peak-rss.mjs', import.meta.url))
const SAMPLE_MS = 100

export interface KeeperRun {
  /** Keeper's command line after the script. */
  args: string[]
  format: 'ndjson' | 'text'
  env: NodeJS.ProcessEnv
  nodeFlags: string[]
  /** The script node runs: keeper's bin, or a build of keeper to compare. */
  entry: string
  /** Where the exit hook writes the exact peak RSS. */
  scratchDir: string
  timeoutMs: number
  signal: AbortSignal
  /** Called once with the job id, as soon as keeper's output names it. */
  onJobId(jobId: string): void
}

export interface RssSample {
  /** ms since keeper started. */
  t: number
  rssMb: number
  /** Of which anonymous memory (heaps) and file-backed pages (the node binary, ICU data, …). */
  anonMb: number
  fileMb: number
  /** Lines keeper had printed by then. */
  lines: number
}

export interface KeeperResult {
  pid: number
  code: number | null
  signal: NodeJS.Signals | null
  wallMs: number
  lines: number
  bytes: number
  /** Exact peak RSS from the exit hook (MB), else the last VmHWM sampled. */
  peakMb: number
  peakExact: boolean
  cpuMs: number | undefined
  samples: RssSample[]
  /** ndjson: events printed (one valid JSON event per line), and whether their seq ran 1, 2, 3, … */
  events: number
  gapless: boolean
  badLines: number
  finished: { seq: number; counts: Record<string, number>; stopReason: string | null; durationMs: number; state: string } | undefined
  /** The last lines printed (the summary, in text mode). */
  tail: string[]
  stderr: string
}

/**
 * Runs the real keeper CLI as its own OS process with stdout on a pipe that is drained (and
 * read line by line), sampling its RSS from /proc every 100 ms while it runs.
 */
export async function runKeeper(r: KeeperRun): Promise<KeeperResult> {
  const peakFile = join(r.scratchDir, `keeper-peak-${Date.now()}-${Math.random().toString(16).slice(2)}`)
  const t0 = performance.now()
  const child = spawn(process.execPath, ['--import', PEAK_HOOK, ...r.nodeFlags, r.entry, ...r.args], {
    cwd: ROOT,
    env: { ...process.env, ...r.env, BENCH_PEAK_RSS_FILE: peakFile, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  if (child.pid === undefined) throw new Error('keeper did not start')
  const pid = child.pid
  // 'close', not 'exit': every line keeper printed has been read by then.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, sig) => resolve({ code, signal: sig })))

  let lines = 0
  let bytes = 0
  let partial = ''
  let events = 0
  let badLines = 0
  let lastSeq = 0
  let gapless = true
  let jobId: string | undefined
  let finished: KeeperResult['finished']
  const tail: string[] = []
  const onLine = (line: string) => {
    lines++
    tail.push(line)
    if (tail.length > 40) tail.shift()
    if (r.format === 'ndjson') {
      let ev: { jobId?: unknown; seq?: unknown; kind?: unknown; counts?: unknown; stopReason?: unknown; durationMs?: unknown; state?: unknown }
      try {
        ev = JSON.parse(line) as typeof ev
      } catch {
        badLines++
        return
      }
      if (typeof ev.seq !== 'number' || typeof ev.kind !== 'string') {
        badLines++
        return
      }
      events++
      if (ev.seq !== lastSeq + 1) gapless = false
      lastSeq = ev.seq
      if (jobId === undefined && typeof ev.jobId === 'string') {
        jobId = ev.jobId
        r.onJobId(jobId)
      }
      if (ev.kind === 'job.finished') {
        finished = {
          seq: ev.seq,
          counts: ev.counts as Record<string, number>,
          stopReason: (ev.stopReason as string | null) ?? null,
          durationMs: ev.durationMs as number,
          state: ev.state as string,
        }
      }
    } else if (jobId === undefined) {
      const m = /\bjob (j[0-9a-z]{6,40})\b/.exec(line)
      if (m) {
        jobId = m[1]!
        r.onJobId(jobId)
      }
    }
  }
  child.stdout!.setEncoding('utf8')
  child.stdout!.on('data', (s: string) => {
    bytes += Buffer.byteLength(s)
    const parts = (partial + s).split('\n')
    partial = parts.pop() ?? ''
    for (const l of parts) onLine(l)
  })
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-16 * 1024)
  })

  const samples: RssSample[] = []
  let hwmMb = 0
  let cpu: number | undefined
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      const m = await statusMb(pid, ['VmRSS', 'VmHWM', 'RssAnon', 'RssFile'])
      const c = await cpuMs(pid)
      if (m && sampling) {
        samples.push({ t: performance.now() - t0, rssMb: m.VmRSS, anonMb: m.RssAnon, fileMb: m.RssFile, lines })
        hwmMb = Math.max(hwmMb, m.VmHWM)
      }
      if (c !== undefined) cpu = c
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS))
    }
  })()

  const kill = () => child.kill('SIGKILL')
  const timer = setTimeout(kill, r.timeoutMs)
  r.signal.addEventListener('abort', kill, { once: true })
  const { code, signal } = await exited
  clearTimeout(timer)
  r.signal.removeEventListener('abort', kill)
  sampling = false
  await sampler
  if (partial !== '') onLine(partial)
  const wallMs = performance.now() - t0
  r.signal.throwIfAborted()
  if (signal === 'SIGKILL') throw new Error(`keeper ran longer than ${r.timeoutMs} ms and was killed\n${stderr}`)

  const exactKb = Number((await readFile(peakFile, 'utf8').catch(() => '')).trim())
  const peakExact = Number.isFinite(exactKb) && exactKb > 0
  return {
    pid,
    code,
    signal,
    wallMs,
    lines,
    bytes,
    peakMb: peakExact ? (exactKb * 1024) / 1e6 : hwmMb,
    peakExact,
    cpuMs: cpu,
    samples,
    events,
    gapless: gapless && events > 0,
    badLines,
    finished,
    tail,
    stderr,
  }
}

/**
 * Least-squares slope of RSS against lines printed, in MB per 10,000 lines, over the samples
 * after the first quarter of the output (start-up and JIT warm-up excluded). NaN with fewer
 * than 20 samples (2 s).
 */
export function rssSlope(samples: RssSample[], lines: number): number {
  const s = samples.filter((x) => x.lines >= lines / 4)
  if (s.length < 20 || lines < 100) return Number.NaN
  const mx = s.reduce((a, x) => a + x.lines, 0) / s.length
  const my = s.reduce((a, x) => a + x.rssMb, 0) / s.length
  let num = 0
  let den = 0
  for (const x of s) {
    num += (x.lines - mx) * (x.rssMb - my)
    den += (x.lines - mx) ** 2
  }
  return den === 0 ? Number.NaN : (num / den) * 10_000
}
