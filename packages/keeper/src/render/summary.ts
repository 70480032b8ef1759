import type { EventOf, JobEvent } from '@apiary/shared'

const MAX_SAMPLE_LINES = 20
const MAX_NODES_LISTED = 10

/**
 * Builds the end-of-job summary from the event stream: nodes of identical result (state, exit
 * code, output digest) form one group, shown with one sample of its output. Only the output of
 * nodes still running and one sample per finished group are held, never every node's output.
 */
export class SummaryBuilder {
  readonly #running = new Map<string, string[]>()
  readonly #samples = new Map<string, string[]>()
  #finished: EventOf<'job.finished'> | undefined

  add(ev: JobEvent): void {
    switch (ev.kind) {
      case 'node.output': {
        const lines = this.#running.get(ev.node) ?? []
        if (lines.length <= MAX_SAMPLE_LINES) {
          for (const l of (ev.data.endsWith('\n') ? ev.data.slice(0, -1) : ev.data).split('\n')) lines.push(l)
        }
        this.#running.set(ev.node, lines)
        break
      }
      case 'node.finished': {
        const lines = this.#running.get(ev.node) ?? []
        this.#running.delete(ev.node)
        const key = ev.digest ?? ''
        if (!this.#samples.has(key)) this.#samples.set(key, lines)
        break
      }
      case 'job.finished':
        this.#finished = ev
        break
      default:
        break
    }
  }

  get finished(): EventOf<'job.finished'> | undefined {
    return this.#finished
  }

  lines(): string[] {
    const fin = this.#finished
    if (!fin) return []
    const out = ['', fin.human]
    const total = fin.groups.reduce((n, g) => n + g.count, 0)
    for (const g of fin.groups) {
      const what = [g.state, g.exitCode !== null ? `exit ${g.exitCode}` : '', g.cause ?? ''].filter(Boolean).join(', ')
      const listed = g.nodes.slice(0, MAX_NODES_LISTED).join(', ') + (g.nodes.length > MAX_NODES_LISTED ? `, … ${g.nodes.length - MAX_NODES_LISTED} more` : '')
      const share = fin.groups.length > 1 || total > 1 ? `${g.count} node${g.count === 1 ? '' : 's'} ` : ''
      out.push(`── ${share}${what}: ${listed}`)
      const sample = this.#samples.get(g.digest)
      if (sample && sample.length > 0 && g.digest !== '') {
        for (const l of sample.slice(0, MAX_SAMPLE_LINES)) out.push(`   ${l}`)
        if (sample.length > MAX_SAMPLE_LINES) out.push('   … (keeper logs shows all of it)')
      }
    }
    return out
  }
}
