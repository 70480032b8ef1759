import type { startEmbedded } from '../embedded.ts'

/**
 * `startEmbedded`, from the TypeScript sources. The built keeper (dist/) does not bundle the
 * embedded cluster (it pulls in the queen, hive and workers), so that every other command
 * starts light; it loads tsx first to read them.
 */
export async function loadEmbedded(): Promise<typeof startEmbedded> {
  const bundled = !import.meta.url.endsWith('.ts')
  // Bundled, this code runs as dist/keeper.mjs; from the sources, as src/cli/load-embedded.ts.
  const url = new URL(bundled ? '../src/embedded.ts' : '../embedded.ts', import.meta.url)
  if (bundled) {
    const { register } = await import('tsx/esm/api')
    register()
  }
  const mod = (await import(url.href)) as typeof import('../embedded.ts')
  return mod.startEmbedded
}
