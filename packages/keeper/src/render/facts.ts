import { type EventOf, Facts } from '@apiary/shared'
import type { Io } from '../cli/context.ts'
import { escapeControls } from './escape.ts'
import { bytesText, table } from './output.ts'

/**
 * Facts rendering: a table of nodes, or with `aggregate` the count of nodes per value of one
 * typed field (`kernel`, `os`, `cpus.count`, `memory.totalBytes`). Only the table's rows or the
 * counts are held, one short row per node.
 */
export function factsRender(io: Io, aggregate: string | undefined) {
  const rows: string[][] = []
  const counts = new Map<string, number>()
  const path = aggregate?.split('.')
  return {
    onFinished(ev: EventOf<'node.finished'>) {
      const f = Facts.safeParse(ev.result)
      if (path) {
        let value: unknown = f.success ? f.data : undefined
        for (const p of path) value = (value as Record<string, unknown> | undefined)?.[p]
        const key = ev.state !== 'ok' ? `(${ev.state}${ev.cause ? `: ${ev.cause}` : ''})` : value === undefined ? '(none)' : typeof value === 'object' ? JSON.stringify(value) : String(value)
        counts.set(key, (counts.get(key) ?? 0) + 1)
        return
      }
      if (ev.state !== 'ok' || !f.success) {
        rows.push([ev.node, ev.state, ev.cause ?? '', '', '', '', ''])
        return
      }
      const d = f.data
      rows.push([ev.node, d.os, d.kernel, d.arch, `${d.cpus.count}`, `${bytesText(d.memory.availableBytes)}/${bytesText(d.memory.totalBytes)}`, d.loadAverage.map((l) => l.toFixed(2)).join(' ')])
    },
    async summary(fin: EventOf<'job.finished'>) {
      if (aggregate) {
        const sorted = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        for (const l of table([aggregate.toUpperCase(), 'NODES'], sorted.map(([k, n]) => [k, String(n)]))) await io.out.line(l)
      } else {
        rows.sort((a, b) => a[0]!.localeCompare(b[0]!))
        for (const l of table(['NODE', 'OS', 'KERNEL', 'ARCH', 'CPUS', 'MEM AVAIL/TOTAL', 'LOAD'], rows)) await io.out.line(l)
      }
      await io.out.line('')
      await io.out.line(escapeControls(fin.human))
    },
  }
}
