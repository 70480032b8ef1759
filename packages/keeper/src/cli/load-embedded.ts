import type { startEmbedded } from '../embedded.ts'

/**
 * `startEmbedded`, loaded on demand: in the bundle the embedded cluster (queen, hive, workers)
 * is a chunk of its own, so every other command starts without it.
 */
export async function loadEmbedded(): Promise<typeof startEmbedded> {
  return (await import('../embedded.ts')).startEmbedded
}
