import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'

/** Linux /proc readings: memory and CPU time of processes and of the machine. Undefined where unreadable. */

export interface MemStatus {
  /** Peak resident set (VmHWM), MB (10^6 bytes). */
  peakMb: number
  /** Current resident set (VmRSS), MB. */
  rssMb: number
}

/** Fields of /proc/<pid>/status that it gives in kB, in MB (10^6 bytes); undefined once the process is gone. */
export async function statusMb<F extends string>(pid: number, fields: readonly F[]): Promise<Record<F, number> | undefined> {
  let text: string
  try {
    text = await readFile(`/proc/${pid}/status`, 'utf8')
  } catch {
    return undefined
  }
  const mb = (field: string) => (Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024) / 1e6
  return Object.fromEntries(fields.map((f) => [f, mb(f)])) as Record<F, number>
}

export async function memStatus(pid: number): Promise<MemStatus | undefined> {
  const m = await statusMb(pid, ['VmHWM', 'VmRSS'])
  return m && { peakMb: m.VmHWM, rssMb: m.VmRSS }
}

let ticksPerSecond: number | undefined
/** Clock ticks per second of /proc's CPU times. */
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

/** The fields of a /proc/…/stat line from field 3 (the state) on: the command name before them may hold spaces. */
function statFields(text: string): string[] {
  return text.slice(text.lastIndexOf(')') + 2).split(' ')
}

/** User + system CPU time the process has used so far, in ms (10 ms resolution). */
export async function cpuMs(pid: number): Promise<number | undefined> {
  let text: string
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  const f = statFields(text)
  return ((Number(f[11]) + Number(f[12])) * 1000) / clockTicks()
}

/**
 * CPU time (user + system, ms) of this process's children that have been waited for, and of
 * theirs (cutime + cstime of /proc/self/stat): a peer tool and every ssh it spawned, once the
 * tool has exited.
 */
export function reapedChildrenCpuMs(): number {
  const f = statFields(readFileSync('/proc/self/stat', 'utf8'))
  return ((Number(f[13]) + Number(f[14])) * 1000) / clockTicks()
}

/** The machine's CPU time so far (all cores), ms: busy (user, nice, system, irq, softirq) and idle (idle, iowait). */
export function machineCpu(): { busyMs: number; idleMs: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0] = f
  const tick = 1000 / clockTicks()
  return { busyMs: (user + nice + system + irq + softirq) * tick, idleMs: (idle + iowait) * tick }
}

/** Share of the machine's CPU that was busy over the next `ms` (0..1). */
export async function busyShare(ms: number): Promise<number> {
  const a = machineCpu()
  await new Promise((r) => setTimeout(r, ms))
  const b = machineCpu()
  const busy = b.busyMs - a.busyMs
  const all = busy + b.idleMs - a.idleMs
  return all > 0 ? busy / all : 0
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
