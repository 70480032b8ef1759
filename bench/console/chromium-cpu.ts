import { cpuMs } from '../lib/procfs.ts'
import { benchProcesses } from './processes.ts'

/**
 * CPU time (ms) so far of the chromium processes this benchmark started: the renderers (the
 * page's main thread and its workers) apart from the rest (browser, GPU, network and utility
 * processes). Other chromiums on the machine, a test's, are not descendants and do not count.
 */
export async function chromiumCpuMs(): Promise<{ renderersMs: number; allMs: number }> {
  let renderersMs = 0
  let allMs = 0
  for (const p of await benchProcesses()) {
    if (!p.chromium) continue
    const ms = (await cpuMs(p.pid)) ?? 0
    allMs += ms
    if (p.renderer) renderersMs += ms
  }
  return { renderersMs, allMs }
}
