import type { Writable } from 'node:stream'
import { escapeControls } from './escape.ts'

/**
 * Writes lines to a stream, waiting for it to drain when it is full, so a slow pipe slows
 * keeper instead of piling output up in memory.
 */
export class LineWriter {
  constructor(private readonly stream: Writable) {}

  line(text: string): Promise<void> {
    return this.raw(`${text}\n`)
  }

  async raw(text: string): Promise<void> {
    if (!this.stream.write(text)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.stream.off('drain', done)
          this.stream.off('close', done)
          this.stream.off('error', done)
          resolve()
        }
        this.stream.once('drain', done)
        this.stream.once('close', done)
        this.stream.once('error', done)
      })
    }
  }
}

/**
 * Left-aligned columns; the last column is not padded. Every cell is one line with its controls
 * escaped (`escapeControls`): tables show what nodes and the queen sent (labels, causes, facts),
 * so a cell must not carry keeper's own colours either.
 */
export function table(header: string[], cells: string[][]): string[] {
  const rows = cells.map((r) => r.map((c) => escapeControls(c)))
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const fmt = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [fmt(header), ...rows.map(fmt)]
}

export function ago(ts: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ts) / 1000))
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.floor(s / 60)}m ago`
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`
  return `${Math.floor(s / 86400)}d ago`
}

export function bytesText(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`
  return `${(n / 1024 ** 3).toFixed(1)} GiB`
}
