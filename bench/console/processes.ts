import { readdir, readFile } from 'node:fs/promises'

export interface BenchProcess {
  pid: number
  /** One of chromium's (browser, renderer, GPU, utility…). */
  chromium: boolean
  renderer: boolean
}

/**
 * The processes this benchmark started, found in /proc: every descendant of this process,
 * chromium's marked. Other programs on the machine (a test's chromium, another benchmark's
 * queen) are not descendants and are left out.
 */
export async function benchProcesses(): Promise<BenchProcess[]> {
  const parent = new Map<number, number>()
  const found = new Map<number, BenchProcess>()
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8')
      const pid = Number(name)
      parent.set(pid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
      // Chromium rewrites its children's command lines into one string: match, do not split.
      const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8')
      const chromium = /^\S*chrom/.test(cmdline)
      found.set(pid, { pid, chromium, renderer: chromium && cmdline.includes('--type=renderer') })
    } catch {
      // gone meanwhile
    }
  }
  const ours = (pid: number) => {
    for (let p = parent.get(pid) ?? 0, hops = 0; p > 1 && hops < 64; p = parent.get(p) ?? 0, hops++) if (p === process.pid) return true
    return false
  }
  return [...found.values()].filter((p) => ours(p.pid))
}
