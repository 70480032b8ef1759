import { type JobEvent, type NodeState, NOT_OK_STATES, resultGroupKey } from '@apiary/shared'
import { paint } from './screen.ts'

/**
 * Live counts of a job from its events: done/total, ok/failed/running, groups of identical
 * result so far, rate and ETA. Holds counts and one key per distinct result, never per node.
 */
export class Progress {
  total = 0
  readonly counts = new Map<NodeState, number>()
  readonly #groups = new Map<string, number>()
  /** Nodes started and not yet finished: bounded by what runs at once. */
  readonly #running = new Set<string>()
  #start = Date.now()
  #done = 0

  constructor(private readonly color: boolean) {}

  /** Starts from counts already known (reattaching to a running job). */
  seed(total: number, counts: Record<string, number>, createdAt: number): void {
    this.total = total
    this.#start = createdAt
    for (const [s, n] of Object.entries(counts)) {
      this.counts.set(s as NodeState, n)
      if (s !== 'pending' && s !== 'running') this.#done += n
      // Who runs is unknown on reattach; those nodes show up as they finish.
    }
  }

  add(ev: JobEvent): void {
    switch (ev.kind) {
      case 'job.submitted':
        this.total = ev.nodes
        this.#start = ev.ts
        break
      case 'node.started':
        this.#running.add(ev.node)
        break
      case 'node.finished': {
        this.#running.delete(ev.node)
        this.#bump(ev.state, 1)
        this.#done++
        const key = resultGroupKey(ev)
        this.#groups.set(key, (this.#groups.get(key) ?? 0) + 1)
        break
      }
      default:
        break
    }
  }

  #bump(s: NodeState, by: number) {
    this.counts.set(s, Math.max(0, (this.counts.get(s) ?? 0) + by))
  }

  line(now = Date.now()): string {
    const secs = Math.max(0.001, (now - this.#start) / 1000)
    const rate = this.#done / secs
    const left = this.total - this.#done
    const eta = rate > 0 && left > 0 ? ` · ETA ${fmtSecs(left / rate)}` : ''
    const c = (s: NodeState) => this.counts.get(s) ?? 0
    const notOk = NOT_OK_STATES.reduce((sum, s) => sum + c(s), 0)
    const parts = [
      `${this.#done.toLocaleString('en-US')}/${this.total.toLocaleString('en-US')} done`,
      paint(this.color, 'ok', `${c('ok').toLocaleString('en-US')} ok`),
      paint(this.color, notOk > 0 ? 'failed' : '', `${notOk.toLocaleString('en-US')} not ok`),
      `${this.#running.size.toLocaleString('en-US')} running`,
      `${this.#groups.size} group${this.#groups.size === 1 ? '' : 's'}`,
      `${rate.toFixed(rate < 10 ? 1 : 0)}/s${eta}`,
    ]
    return parts.join(' · ')
  }
}

function fmtSecs(s: number): string {
  if (s < 60) return `${Math.ceil(s)}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${Math.round(s % 60)}s`
  return `${Math.floor(s / 3600)}h${Math.round((s % 3600) / 60)}m`
}
