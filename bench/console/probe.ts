/**
 * What the console benchmark measures from inside the page, without touching the console: an
 * init script (installed with `page.addInitScript`, so it runs before the console's own code)
 * that records long tasks, every animation frame, the job stream's events as they arrive, and
 * the moment the page shows every node done; and readers for what it recorded.
 *
 * Plain JavaScript strings, not functions: tsx compiles this file with esbuild's keepNames,
 * whose `__name(…)` wrappers do not exist in the page a function would be serialised into.
 */
import type { CDPSession, Page } from 'playwright-core'

/** Frames recorded at most: ten minutes at 60 fps (a Float64Array, 288 kB). */
const MAX_FRAMES = 36_000
/** Long tasks recorded at most. */
const MAX_LONG_TASKS = 10_000

/**
 * The page side. `window.__bench`:
 * - `longTasks`: [startTime, duration] of each PerformanceObserver 'longtask' entry (≥ 50 ms);
 * - `frames`: the timestamp of every requestAnimationFrame callback of a loop of its own, which
 *   also keeps the compositor producing frames, as a painting page does;
 * - `es`: the job stream (the console's EventSource, subclassed to count what arrives before
 *   the console's listeners run): opened, first and last event, events, job.finished's arrival
 *   (page clock) and its `ts` (the queen's clock);
 * - `doneAt`/`doneWall`: when the `done` figure first reads "N / N" with N > 0. The page
 *   renders that figure from the same model, in the same animation frame (the render is a
 *   microtask after the frame's draw callback) in which it paints the grid's changed cells, so
 *   this is the moment the last cell was painted. A MutationObserver on the figure catches it
 *   within that task.
 * - `hashAt`, `gridAt`: the last route change, and the first frame after it in which the grid's
 *   canvas exists (the job's nodes fetched, its model built).
 */
export const PROBE_SCRIPT = `(() => {
  if (window.__bench) return
  const b = {
    longTasks: [], frames: new Float64Array(${MAX_FRAMES}), nFrames: 0,
    es: { opened: null, first: null, last: null, events: 0, finishedPerf: null, finishedWall: null, finishedTs: null },
    hashAt: null, gridAt: null, doneAt: null, doneWall: null, doneText: null, watching: false,
  }
  Object.defineProperty(window, '__bench', { value: b })
  window.addEventListener('hashchange', () => { b.hashAt = performance.now(); b.gridAt = null })
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if (b.longTasks.length < ${MAX_LONG_TASKS}) b.longTasks.push([e.startTime, e.duration])
    }).observe({ type: 'longtask', buffered: true })
  } catch {}
  const Native = window.EventSource
  const KINDS = ['job.submitted', 'job.region', 'job.cancelling', 'job.halted', 'job.canary', 'node.started', 'node.finished']
  window.EventSource = class extends Native {
    constructor(url, init) {
      super(url, init)
      b.es.opened = performance.now()
      const seen = () => {
        const t = performance.now()
        if (b.es.first === null) b.es.first = t
        b.es.last = t
        b.es.events++
      }
      for (const k of KINDS) this.addEventListener(k, seen)
      this.addEventListener('job.finished', (e) => {
        seen()
        b.es.finishedPerf = performance.now()
        b.es.finishedWall = Date.now()
        try { b.es.finishedTs = JSON.parse(e.data).ts } catch {}
      })
    }
  }
  const check = (el) => {
    if (b.doneAt !== null) return
    const [d, n] = (el.textContent || '').split('/').map((s) => Number(s.replace(/[^0-9]/g, '')))
    if (n > 0 && d === n) {
      b.doneAt = performance.now()
      b.doneWall = Date.now()
      b.doneText = el.textContent
    }
  }
  const tick = (t) => {
    if (b.nFrames < ${MAX_FRAMES}) b.frames[b.nFrames++] = t
    if (b.gridAt === null && document.querySelector('canvas.grid')) b.gridAt = performance.now()
    if (!b.watching) {
      const el = document.querySelector('[data-testid=done]')
      if (el) {
        b.watching = true
        new MutationObserver(() => check(el)).observe(el, { subtree: true, childList: true, characterData: true })
        check(el)
      }
    }
    requestAnimationFrame(tick)
  }
  requestAnimationFrame(tick)
})()`

export interface ProbeReading {
  /** performance.now() in the page when read. */
  now: number
  hashAt: number | null
  gridAt: number | null
  doneAt: number | null
  doneWall: number | null
  doneText: string | null
  es: { opened: number | null; first: number | null; last: number | null; events: number; finishedPerf: number | null; finishedWall: number | null; finishedTs: number | null }
  longTasks: Array<[number, number]>
  frames: number[]
}

/** What the probe has recorded so far. */
export async function readProbe(page: Page): Promise<ProbeReading> {
  return (await page.evaluate(`(() => {
    const b = window.__bench
    return { now: performance.now(), hashAt: b.hashAt, gridAt: b.gridAt, doneAt: b.doneAt, doneWall: b.doneWall, doneText: b.doneText, es: b.es,
             longTasks: b.longTasks, frames: Array.from(b.frames.subarray(0, b.nFrames)) }
  })()`)) as ProbeReading
}

/** Whether the page shows every node done yet (cheap: for polling). */
export async function probeDone(page: Page): Promise<{ done: boolean; finished: boolean; events: number }> {
  return (await page.evaluate('({ done: window.__bench.doneAt !== null, finished: window.__bench.es.finishedPerf !== null, events: window.__bench.es.events })')) as {
    done: boolean
    finished: boolean
    events: number
  }
}

/** Frames per second and the longest gap between frames over [from, to] (page clock, ms). */
export function frameRate(frames: readonly number[], from: number, to: number): { fps: number; frames: number; worstGapMs: number } {
  let n = 0
  let prev = Number.NaN
  let worst = 0
  for (const t of frames) {
    if (t < from || t > to) continue
    if (!Number.isNaN(prev)) worst = Math.max(worst, t - prev)
    prev = t
    n++
  }
  const span = (to - from) / 1000
  return { fps: span > 0 ? n / span : Number.NaN, frames: n, worstGapMs: worst }
}

/** The long tasks that overlap [from, to]: how many, the longest, and their total time. */
export function longTasksIn(tasks: ReadonlyArray<[number, number]>, from: number, to: number): { count: number; longestMs: number; totalMs: number } {
  let count = 0
  let longest = 0
  let total = 0
  for (const [start, dur] of tasks) {
    if (start + dur < from || start > to) continue
    count++
    longest = Math.max(longest, dur)
    total += dur
  }
  return { count, longestMs: longest, totalMs: total }
}

/**
 * The state each grid cell shows, read back from the canvas: one pixel per cell (its bottom
 * right, which no state's mark reaches), matched to the nearest state fill. Counts by state,
 * and cells matching none.
 */
export async function paintedCounts(page: Page, states: readonly string[], nodes: number): Promise<Record<string, number>> {
  return (await page.evaluate(`(() => {
    const states = ${JSON.stringify(states)}
    const n = ${nodes}
    const cv = document.querySelector('canvas.grid')
    if (!cv) return { 'no grid': n }
    const css = getComputedStyle(cv)
    const rgb = (hex) => [1, 3, 5].map((k) => parseInt(hex.trim().slice(k, k + 2), 16))
    const fills = states.map((s) => [s, rgb(css.getPropertyValue('--state-' + s))])
    const w = cv.clientWidth
    const h = cv.clientHeight
    const dpr = cv.width / w
    // The pitch the layout chose: the size whose columns and rows hold exactly n cells (grid-layout.ts).
    const pitch = [16, 12, 10, 8, 6, 5, 4, 3, 2].find((p) => w % p === 0 && h % p === 0 && Math.ceil(n / (w / p)) === h / p)
    if (!pitch) return { 'layout unknown': n }
    const cols = w / pitch
    const side = pitch - (pitch >= 6 ? 1 : 0)
    const px = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data
    const out = {}
    for (let i = 0; i < n; i++) {
      const x = Math.floor(((i % cols) * pitch + side - 0.5) * dpr)
      const y = Math.floor((Math.floor(i / cols) * pitch + side - 0.5) * dpr)
      const at = (y * cv.width + x) * 4
      let best = 'unpainted'
      let bestD = 3 * 12 * 12
      for (const [s, c] of fills) {
        const d = (px[at] - c[0]) ** 2 + (px[at + 1] - c[1]) ** 2 + (px[at + 2] - c[2]) ** 2
        if (d < bestD) { bestD = d; best = s }
      }
      out[best] = (out[best] || 0) + 1
    }
    return out
  })()`)) as Record<string, number>
}

/**
 * The tab's JS heap, sampled through CDP (`Performance.getMetrics`) every `everyMs` until
 * stopped: a chained timer, never two requests in flight.
 */
export function sampleHeap(cdp: CDPSession, everyMs: number): { stop(): Promise<{ peakMb: number; lastMb: number; samples: number }> } {
  let peak = 0
  let last = Number.NaN
  let samples = 0
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let inFlight: Promise<void> = Promise.resolve()
  const once = async () => {
    try {
      const used = await heapUsedMb(cdp)
      peak = Math.max(peak, used)
      last = used
      samples++
    } catch {
      // the page is going away: the samples so far stand
    }
  }
  const next = () => {
    if (stopped) return
    timer = setTimeout(() => {
      inFlight = once().then(next)
    }, everyMs)
  }
  inFlight = once().then(next)
  return {
    async stop() {
      stopped = true
      clearTimeout(timer)
      await inFlight
      return { peakMb: peak, lastMb: last, samples }
    },
  }
}

/** JSHeapUsedSize of the page's main isolate, MB (10^6 bytes). */
export async function heapUsedMb(cdp: CDPSession): Promise<number> {
  const { metrics } = await cdp.send('Performance.getMetrics')
  const used = metrics.find((m) => m.name === 'JSHeapUsedSize')?.value
  if (used === undefined) throw new Error('no JSHeapUsedSize in Performance.getMetrics')
  return used / 1e6
}
