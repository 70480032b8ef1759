import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** One tool's run of one command over every node. */
export interface Outcome {
  ms: number
  /** Nodes where the command ran and answered as expected. */
  ok: number
  total: number
  /** Client-side CPU: this process for apiary, the tool and its ssh children for a peer. */
  cpuMs: number
  /** CPU the whole machine spent meanwhile (user + system + softirq): client, sshd, kernel. */
  machineCpuMs: number
  /** Why the other nodes do not count, with how many. */
  failures: Map<string, number>
}

/**
 * CPU time (user + system, ms) of this process's children that have been waited for, and of
 * theirs (cutime + cstime of /proc/self/stat): a peer tool and every ssh it spawned, once the
 * tool has exited.
 */
export function reapedChildrenCpuMs(): number {
  const text = readFileSync('/proc/self/stat', 'utf8')
  // Fields after the command name's closing parenthesis start at field 3 (state).
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return ((Number(rest[13]) + Number(rest[14])) * 1000) / clockTicks()
}

let ticks: number | undefined
/** Clock ticks per second of /proc's CPU times (bench/fanout/procfs.ts keeps its own private). */
function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      ticks = 100
    }
  }
  return ticks
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
