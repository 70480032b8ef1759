import type { Io } from '../cli/context.ts'

/** `3 ok, 1 failed`: the non-zero counts. */
export function counts(c: Record<string, number>): string {
  return Object.entries(c)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`)
    .join(', ')
}

/** Prints records as one JSON document (`json`) or one per line (`ndjson`); false in text mode. */
export async function printJson(io: Io, key: string, records: unknown[]): Promise<boolean> {
  if (io.format === 'text') return false
  if (io.format === 'json') await io.out.line(JSON.stringify({ [key]: records }))
  else for (const r of records) await io.out.line(JSON.stringify(r))
  return true
}
