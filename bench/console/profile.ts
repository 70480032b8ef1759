/**
 * A page's CPU profile (CDP `Profiler`), summed by function: self time per function, with the
 * console bundle's minified positions mapped back to its sources through the build's source
 * maps, so the summary names `src/job/model.ts:170` rather than `main-X.js:1:9123`.
 */
import { readFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { basename, join, normalize } from 'node:path'

/** The parts of a V8 CPU profile (`Profiler.stop`'s answer) this reads. */
export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number } }>
  startTime: number
  endTime: number
  samples?: number[]
  timeDeltas?: number[]
}

export interface ProfileLine {
  /** The function as the profile names it, and where it is: the source line when mapped. */
  what: string
  selfMs: number
  /** Samples × the sampling interval: the time it was seen on a core (self time also holds waits for one). */
  sampledMs: number
  share: number
}

/**
 * The `top` functions by self time, largest first; positions in files of `assetsDir` (the
 * console's dist/assets) are mapped through their `.map`. The total is the profile's span.
 */
export function topSelfTime(profile: CpuProfile, assetsDir: string, top: number, intervalUs: number): { lines: ProfileLine[]; totalMs: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfUs = new Map<number, number>()
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  // timeDeltas[i] is the time before sample i: sample i lasts until sample i + 1.
  for (let i = 0; i < samples.length; i++) selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + (deltas[i + 1] ?? 0))
  const maps = new Map<string, SourceMap | null>()
  const mapFor = (url: string) => mapOf(maps, url, assetsDir)
  const hits = new Map<number, number>()
  for (const id of samples) hits.set(id, (hits.get(id) ?? 0) + 1)
  const sums = new Map<string, { us: number; hits: number }>()
  for (const [id, us] of selfUs) {
    const n = byId.get(id)
    if (!n) continue
    const l = label(n.callFrame, mapFor)
    const sum = sums.get(l) ?? { us: 0, hits: 0 }
    sum.us += us
    sum.hits += hits.get(id) ?? 0
    sums.set(l, sum)
  }
  const totalMs = (profile.endTime - profile.startTime) / 1000
  const lines = [...sums]
    .sort((a, b) => b[1].us - a[1].us)
    .slice(0, top)
    .map(([what, { us, hits: h }]) => ({ what, selfMs: us / 1000, sampledMs: (h * intervalUs) / 1000, share: totalMs > 0 ? us / 1000 / totalMs : Number.NaN }))
  return { lines, totalMs }
}

function label(cf: CpuProfile['nodes'][number]['callFrame'], mapFor: (url: string) => SourceMap | null): string {
  const name = cf.functionName || '(anonymous)'
  if (!cf.url) return name
  const map = /^https?:/.test(cf.url) ? mapFor(cf.url) : null
  const entry = map?.findEntry(cf.lineNumber, cf.columnNumber) as { originalSource?: string; originalLine?: number; name?: string } | undefined
  if (!map || !entry?.originalSource) return `${name} ${basename(cf.url)}:${cf.lineNumber + 1}:${cf.columnNumber + 1}`
  const source = normalize(entry.originalSource).replace(/^(\.\.\/)+/, '').replace(/^node_modules\/\.pnpm\/[^/]+\/node_modules\//, '')
  const text = originalLine(map, entry.originalSource, entry.originalLine ?? 0)
  return `${entry.name ?? name} ${source}:${(entry.originalLine ?? 0) + 1}${text ? `  ${text}` : ''}`
}

/** The source line, trimmed, from the map's sourcesContent: it usually names the function. */
function originalLine(map: SourceMap, source: string, line: number): string {
  const payload = map.payload as { sources: string[]; sourcesContent?: Array<string | null> }
  const k = payload.sources.indexOf(source)
  const text = k < 0 ? undefined : payload.sourcesContent?.[k]?.split('\n')[line]
  if (!text) return ''
  const t = text.trim()
  return t.length > 70 ? `${t.slice(0, 69)}…` : t
}

export interface BusyStretch {
  /** ms from the profile's start. */
  atMs: number
  /** Wall time from its first sample to its end. */
  wallMs: number
  /** Time its samples account for at the sampling interval: well below the wall time, the thread was off the CPU (other processes ran). */
  sampledMs: number
  /** The functions with the most self time in it. */
  top: Array<{ what: string; ms: number }>
}

/**
 * The longest runs of the main thread busy without a break (no `(idle)` sample between): what a
 * long task is made of, seen from the profile. Each with the functions that filled it.
 */
export function busyStretches(profile: CpuProfile, assetsDir: string, count: number, minMs: number, intervalUs: number): BusyStretch[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  const labels = new Map<number, string>()
  const maps = new Map<string, SourceMap | null>()
  const labelOf = (id: number): string => {
    let l = labels.get(id)
    if (l === undefined) {
      const n = byId.get(id)
      l = n ? label(n.callFrame, (url) => mapOf(maps, url, assetsDir)) : '?'
      labels.set(id, l)
    }
    return l
  }
  const out: BusyStretch[] = []
  let t = profile.startTime
  let start = -1
  let startAt = 0
  const flush = (end: number, endAt: number) => {
    if (start < 0) return
    const wallMs = (endAt - startAt) / 1000
    if (wallMs >= minMs) {
      const self = new Map<string, number>()
      for (let k = start; k < end; k++) {
        const l = labelOf(samples[k]!)
        self.set(l, (self.get(l) ?? 0) + (deltas[k + 1] ?? 0) / 1000)
      }
      out.push({
        atMs: (startAt - profile.startTime) / 1000,
        wallMs,
        sampledMs: ((end - start) * intervalUs) / 1000,
        top: [...self].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([what, ms]) => ({ what, ms })),
      })
    }
    start = -1
  }
  for (let k = 0; k < samples.length; k++) {
    t += deltas[k] ?? 0
    const idle = byId.get(samples[k]!)?.callFrame.functionName === '(idle)'
    if (idle) flush(k, t)
    else if (start < 0) {
      start = k
      startAt = t
    }
  }
  flush(samples.length, profile.endTime)
  return out.sort((a, b) => b.wallMs - a.wallMs).slice(0, count)
}

function mapOf(maps: Map<string, SourceMap | null>, url: string, assetsDir: string): SourceMap | null {
  const file = basename(new URL(url, 'http://x/').pathname)
  if (!maps.has(file)) {
    let m: SourceMap | null = null
    try {
      m = new SourceMap(JSON.parse(readFileSync(join(assetsDir, `${file}.map`), 'utf8')) as ConstructorParameters<typeof SourceMap>[0])
    } catch {
      // not a console asset (or no map): left as the profile names it
    }
    maps.set(file, m)
  }
  return maps.get(file)!
}
