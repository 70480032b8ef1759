/**
 * The risk classifier over its table (packages/shared/src/risk/cases.ts), beside the
 * word-splitting classifier it replaced, in the same run: how many destructive spellings each
 * catches, how many ordinary commands each stops for a confirmation it did not need, and what
 * a classification costs — uncached (the queen's submit path, a worker's first task of a
 * job), cached (the rest of a job's tasks on an SSH worker), the first call of a process
 * (which loads the parser) and the largest script a command may hold.
 *
 *   pnpm bench:risk [--list]   (--list names every case each classifier gets wrong)
 */
import { parseArgs } from 'node:util'
import type { Operation, Risk } from '@apiary/shared'
import { classifyRisk } from '@apiary/shared/risk'
import { DESTRUCTIVE, ORDINARY, type RiskCase } from '@apiary/shared/risk/cases'
import { fmt, median, table } from '../lib/stats.ts'
import { classifyByWords } from './word-split.ts'

const { values } = parseArgs({ options: { list: { type: 'boolean', default: false } } })

// First: what the first classification in a process costs (it loads mvdan-sh).
const t0 = performance.now()
classifyRisk({ type: 'exec', shell: true, command: 'true' })
const firstMs = performance.now() - t0

interface Score {
  caught: RiskCase[]
  missed: RiskCase[]
  stopped: RiskCase[]
}

function score(classify: (op: Operation) => Risk): Score {
  const caught = DESTRUCTIVE.filter((c) => classify(c.op).class === 'destructive')
  return { caught, missed: DESTRUCTIVE.filter((c) => !caught.includes(c)), stopped: ORDINARY.filter((c) => classify(c.op).class !== 'safe') }
}

/** Median µs per classification over the whole table; `fresh` defeats the cache, else each op is asked again at once. */
function cost(classify: (op: Operation) => Risk, fresh: boolean, rounds = 5): number {
  const all = [...DESTRUCTIVE, ...ORDINARY]
  const samples: number[] = []
  for (let r = 0; r < rounds; r++) {
    const ops = all.map((c, i) => (fresh ? { ...c.op, env: { ...c.op.env, BENCH_ROUND: `${r}.${i}` } } : c.op))
    let spent = 0
    for (const op of ops) {
      if (!fresh) classify(op)
      const start = performance.now()
      classify(op)
      spent += performance.now() - start
    }
    samples.push((spent * 1000) / ops.length)
  }
  return median(samples)
}

const pct = (n: number, of: number) => `${fmt((100 * n) / of)}%`
const before = score(classifyByWords)
const now = score(classifyRisk)

const line = 'if [ -d "$DIR/build" ]; then rm -rf "$DIR/build" && echo "removed $(date)" | tee -a /var/log/x.log; fi\n'
const big = line.repeat(Math.floor((64 * 1024) / line.length))
const bigMs = Array.from({ length: 5 }, (_, i) => {
  const start = performance.now()
  classifyRisk({ type: 'exec', shell: true, command: big, env: { BENCH: `big.${i}` } })
  return performance.now() - start
})

console.log(`risk classification over its table: ${DESTRUCTIVE.length} destructive spellings, ${ORDINARY.length} ordinary commands`)
console.log(
  table([
    ['classifier', 'caught', 'false positives', 'µs/op uncached', 'µs/op cached'],
    ['word splitting (before)', `${before.caught.length} (${pct(before.caught.length, DESTRUCTIVE.length)})`, `${before.stopped.length} (${pct(before.stopped.length, ORDINARY.length)})`, fmt(cost(classifyByWords, true)), '–'],
    ['mvdan/sh parse (now)', `${now.caught.length} (${pct(now.caught.length, DESTRUCTIVE.length)})`, `${now.stopped.length} (${pct(now.stopped.length, ORDINARY.length)})`, fmt(cost(classifyRisk, true)), fmt(cost(classifyRisk, false), 2)],
  ]),
)
console.log(`first classification in a process (loads the parser): ${fmt(firstMs)} ms; a ${fmt(big.length / 1024)} KiB script (the most a command may hold): ${fmt(bigMs[0]!)} ms the first time, ${fmt(median(bigMs.slice(1)))} ms after (median of 4)`)

if (values.list) {
  for (const [who, s] of [['before', before], ['now', now]] as const) {
    for (const c of s.missed) console.log(`${who} misses: ${c.name}`)
    for (const c of s.stopped) console.log(`${who} stops: ${c.name}`)
  }
}
