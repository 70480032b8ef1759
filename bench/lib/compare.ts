import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { type BenchContext, progress } from './run.ts'
import { ROOT } from './roles.ts'

/**
 * Before/after in one run: the same benchmark run in two checkouts of apiary (this one and an
 * older commit's worktree), one after the other in alternating order, each as its own process
 * tree with its own in-run baseline. Shared machines are noisy and their load drifts, so the
 * order alternates (before, now, now, before, …) and each pair is compared on its own.
 */

export type Tree = 'before' | 'now'

export interface TreeRun {
  tree: Tree
  pair: number
  /** What the benchmark printed on stdout (its report). */
  stdout: string
}

/**
 * Runs `pnpm -s <script> <args(tree, pair)>` `pairs` times in `beforeDir` and as often in this checkout,
 * alternating which goes first, and returns their reports in the order they ran. Each child
 * is its own process group: aborting `ctx.signal` sends the group SIGTERM (the benchmark tears
 * itself down), a second signal to this process SIGKILLs it. A run that exits non-zero fails
 * the comparison with its last output.
 */
export async function runBeforeAndNow(script: string, args: (tree: Tree, pair: number) => string[], beforeDir: string, pairs: number, ctx: BenchContext): Promise<TreeRun[]> {
  const runs: TreeRun[] = []
  for (let pair = 1; pair <= pairs; pair++) {
    const order: Tree[] = pair % 2 === 1 ? ['before', 'now'] : ['now', 'before']
    for (const tree of order) {
      ctx.signal.throwIfAborted()
      const dir = tree === 'before' ? resolve(beforeDir) : ROOT
      progress(`pair ${pair}/${pairs}: ${script} in ${tree === 'before' ? dir : 'this checkout'}`)
      runs.push({ tree, pair, stdout: await runIn(dir, script, args(tree, pair), `[${tree} ${pair}] `, ctx) })
    }
  }
  return runs
}

function runIn(dir: string, script: string, args: string[], prefix: string, ctx: BenchContext): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const child = spawn('pnpm', ['-s', script, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    const pid = child.pid!
    ctx.pids.add(-pid)
    let out = ''
    let errTail = ''
    let partial = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr.on('data', (c: Buffer) => {
      const s = c.toString()
      errTail = (errTail + s).slice(-8192)
      const lines = (partial + s).split('\n')
      partial = lines.pop() ?? ''
      for (const l of lines) process.stderr.write(`${prefix}${l}\n`)
    })
    const onAbort = () => {
      try {
        process.kill(-pid, 'SIGTERM')
      } catch {
        // already gone
      }
    }
    ctx.signal.addEventListener('abort', onAbort, { once: true })
    child.once('error', reject)
    child.once('close', (code, sig) => {
      ctx.signal.removeEventListener('abort', onAbort)
      ctx.pids.delete(-pid)
      if (code === 0) resolveRun(out)
      else reject(new Error(`pnpm -s ${script} in ${dir} exited ${code ?? sig}\n${errTail}\n${out.slice(-4096)}`))
    })
  })
}

/**
 * The rows of the first table printed by `table()` (stats.ts) whose header starts with `first`
 * (and holds `having`, when given), header row included: columns are cut where the separator
 * line's runs of '─' are, so cells may hold spaces. Undefined when the report has no such table.
 */
export function readTable(report: string, first: string, having = ''): string[][] | undefined {
  const lines = report.split('\n')
  const at = lines.findIndex((l, i) => l.startsWith(first) && l.includes(having) && lines[i + 1]?.startsWith('─'))
  if (at < 0) return undefined
  const spans: Array<[number, number]> = []
  for (const m of lines[at + 1]!.matchAll(/─+/g)) spans.push([m.index, m.index + m[0].length])
  const rows: string[][] = []
  for (const l of [lines[at]!, ...lines.slice(at + 2)]) {
    if (l.trim() === '') break
    rows.push(spans.map(([a, b], i) => (i === spans.length - 1 ? l.slice(a) : l.slice(a, b)).trim()))
  }
  return rows
}

/** The number in the cell at (`row` named by its first cell, `column` named by its header); NaN if absent. */
export function cell(rows: string[][] | undefined, row: string, column: string): number {
  const c = rows?.[0]?.indexOf(column) ?? -1
  const r = rows?.find((x) => x[0] === row)
  return c < 0 || !r ? Number.NaN : Number.parseFloat(r[c] ?? '')
}

/** The runs' figures by pair: each pair's before and now side by side. */
export function byPair<F>(runs: readonly TreeRun[], figures: (report: string) => F): Array<{ pair: number; before: F; now: F }> {
  const pairs = [...new Set(runs.map((r) => r.pair))]
  return pairs.map((pair) => {
    const get = (tree: Tree) => figures(runs.find((r) => r.pair === pair && r.tree === tree)!.stdout)
    return { pair, before: get('before'), now: get('now') }
  })
}

/** `now / before` with two decimals and an x. */
export function times(now: number, before: number): string {
  return `${(now / before).toFixed(2)}x`
}
