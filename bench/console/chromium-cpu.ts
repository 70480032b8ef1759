import { readdir, readFile } from 'node:fs/promises'
import { cpuMs } from '../lib/procfs.ts'

/**
 * CPU time (ms) so far of the chromium processes this benchmark started (descendants of this
 * process, found in /proc): the renderers (the page's main thread and its workers) apart from
 * the rest (browser, GPU, network and utility processes). Other chromiums on the machine, a
 * test's, are not descendants and do not count.
 */
export async function chromiumCpuMs(): Promise<{ renderersMs: number; allMs: number }> {
  const parent = new Map<number, number>()
  const renderer = new Set<number>()
  const chromium = new Set<number>()
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8')
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
      // Chromium rewrites its children's command lines into one string: match, do not split.
      const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8')
      if (!/^\S*chrom/.test(cmdline)) continue
      chromium.add(Number(name))
      if (cmdline.includes('--type=renderer')) renderer.add(Number(name))
    } catch {
      // gone meanwhile
    }
  }
  const ours = (pid: number) => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = parent.get(p) ?? 0, hops++) if (p === process.pid) return true
    return false
  }
  let renderersMs = 0
  let allMs = 0
  for (const pid of chromium) {
    if (!ours(pid)) continue
    const ms = (await cpuMs(pid)) ?? 0
    allMs += ms
    if (renderer.has(pid)) renderersMs += ms
  }
  return { renderersMs, allMs }
}
