/** "3 ok, 1 failed", in the order states are listed in the contract. */
export function countsLine(counts: Partial<Record<string, number>>): string {
  const order: string[] = ['ok', 'failed', 'error', 'timeout', 'cancelled', 'skipped', 'lost', 'running', 'pending']
  return order
    .filter((s) => (counts[s] ?? 0) > 0)
    .map((s) => `${counts[s]} ${s}`)
    .join(', ')
}

export function durationText(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  return `${Math.floor(ms / 60_000)} m ${Math.round((ms % 60_000) / 1000)} s`
}
