import { execFileSync } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'

/** Linux /proc readings of other processes: memory and CPU time. Undefined where unreadable. */

export interface MemStatus {
  /** Peak resident set (VmHWM), MB (10^6 bytes). */
  peakMb: number
  /** Current resident set (VmRSS), MB. */
  rssMb: number
}

export async function memStatus(pid: number): Promise<MemStatus | undefined> {
  let text: string
  try {
    text = await readFile(`/proc/${pid}/status`, 'utf8')
  } catch {
    return undefined
  }
  const mb = (field: string) => (Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024) / 1e6
  return { peakMb: mb('VmHWM'), rssMb: mb('VmRSS') }
}

let ticksPerSecond: number | undefined
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      ticksPerSecond = 100
    }
  }
  return ticksPerSecond
}

/** User + system CPU time the process has used so far, in ms (10 ms resolution). */
export async function cpuMs(pid: number): Promise<number | undefined> {
  let text: string
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // The command name (field 2) may hold spaces; fields after its closing parenthesis are fixed.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
  const utime = Number(rest[11])
  const stime = Number(rest[12])
  return ((utime + stime) * 1000) / clockTicks()
}

/** The pid of a process whose command line contains every one of `parts`, if exactly one does. */
export async function findPid(parts: string[]): Promise<number | undefined> {
  const found: number[] = []
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const argv = (await readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0')
      if (parts.every((p) => argv.includes(p))) found.push(Number(name))
    } catch {
      // gone meanwhile
    }
  }
  return found.length === 1 ? found[0] : undefined
}
