import { createHash } from 'node:crypto'
import type { Operation } from '../schema/operation.ts'
import type { Risk } from '../schema/risk.ts'
import { loadParser } from './shell-tree.ts'
import { findReasons } from './walk.ts'

export type { Risk, RiskClass } from '../schema/risk.ts'
export { REASON } from './reasons.ts'

/**
 * Loads the shell parser now rather than on the first classification, which would otherwise
 * hold the event loop for it (0.1 s on a quiet machine, up to 1 s on a loaded one). For a
 * process that will classify anyway, like the queen; a worker leaves it to its first task.
 */
export function preloadRiskClassifier(): void {
  loadParser()
}

/** The same operation reaches a worker once per node it runs on there (an SSH worker runs many). */
const CACHE_SIZE = 64
const cache = new Map<string, string[]>()

/**
 * Classifies an operation's risk: its shell command (parsed by a real shell parser, mvdan/sh),
 * or its argv, with the wrappers that run another command (`sudo`, `env`, `timeout`,
 * `sh -c`, `xargs`, `find -exec`…), what a shell reads on stdin, the variables in `env`, and
 * the directory in `cwd`. What cannot be checked ahead of running it (a parse error, `eval`
 * of text built at run time, a command substitution run as a command, decoded or downloaded
 * text run as a script) counts as destructive too. Destructive operations need an explicit
 * confirmation of the node count (`--yes`, or typing the count on a terminal), and the queen
 * refuses them without it. A classifier cannot read intent: it catches foot-guns, it is not
 * a sandbox.
 *
 * Synchronous, and cached by the operation's content: the queen calls it on the submit path
 * and every worker calls it for every task.
 *
 * @example classifyRisk({ type: 'exec', shell: true, command: "bash -lc 'rm -rf /'" }) // { class: 'destructive', reasons: ['recursive delete of a broad path'] }
 */
export function classifyRisk(op: Operation): Risk {
  if (op.type !== 'exec') return { class: 'safe', reasons: [] }
  // By digest: an operation may hold a MiB of stdin, and the cache would hold it 64 times.
  const key = createHash('sha256').update(JSON.stringify([op.shell, op.command, op.argv, op.env, op.cwd, op.stdin])).digest('base64')
  let reasons = cache.get(key)
  if (reasons) {
    cache.delete(key)
  } else {
    reasons = findReasons(op)
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!)
  }
  cache.set(key, reasons)
  return { class: reasons.length > 0 ? 'destructive' : 'safe', reasons: [...reasons] }
}
