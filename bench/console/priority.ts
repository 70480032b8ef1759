import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { getPriority, setPriority } from 'node:os'
import { benchProcesses } from './processes.ts'

/**
 * Lowers the CPU priority of the benchmark's load (nats-server, the queen, the hive, the fleet
 * hosts: every process it started but chromium's) to `nice`, so that when the browser's
 * renderer wants a core it is scheduled first; the load still runs, on what the page leaves.
 * In a deployment the queen, the bus and the nodes are other machines than the operator's
 * browser; on this one they share its two cores.
 *
 * Two levers, because either alone may do nothing:
 * - every thread's nice value (on Linux a nice value is per thread; threads made later inherit
 *   their maker's);
 * - the nice value of the load's autogroup, where the kernel groups processes by session
 *   (`/proc/sys/kernel/sched_autogroup_enabled`): playwright starts chromium in a session of
 *   its own, so the kernel first shares the cores between the two groups as equals, and a
 *   thread's nice value only orders it within its group. That group also holds this process
 *   (the benchmark's driver, which polls the page) and whatever else shares its session.
 *
 * Resolves with what it did, in words, and a function that puts every value back. Lowering a
 * nice value again needs root (CAP_SYS_NICE): without it the restore throws, and the runs after
 * it would not be the contended ones they claim to be.
 */
export async function deprioritiseLoad(nice: number): Promise<{ said: string; restore(): Promise<void> }> {
  const procs = await benchProcesses()
  const load = procs.filter((p) => !p.chromium).map((p) => p.pid)
  const browser = procs.find((p) => p.chromium)?.pid
  const threads = new Map<number, number>()
  // Twice: a thread made meanwhile by one not yet changed inherits the old value.
  for (let pass = 0; pass < 2; pass++) {
    for (const pid of load) {
      for (const tid of tasksOf(pid)) {
        if (threads.has(tid)) continue
        try {
          threads.set(tid, getPriority(tid))
          setPriority(tid, nice)
        } catch {
          // gone meanwhile
        }
      }
    }
  }
  const groups = new Map<string, { pid: number; nice: number }>()
  const browserGroup = browser === undefined ? undefined : autogroupOf(browser)
  const sharedWithBrowser = new Set<string>()
  for (const pid of [process.pid, ...load]) {
    const g = autogroupOf(pid)
    if (!g || groups.has(g.id)) continue
    if (g.id === browserGroup?.id) {
      sharedWithBrowser.add(g.id)
      continue
    }
    groups.set(g.id, { pid, nice: g.nice })
    writeFileSync(`/proc/${pid}/autogroup`, String(nice))
  }
  const said =
    `nice ${nice} on ${threads.size} threads of ${load.length} processes (every one this benchmark started but chromium's)` +
    (groups.size > 0 ? ` and on their autogroup${groups.size > 1 ? 's' : ''} (${[...groups.keys()].join(', ')}; chromium's is ${browserGroup?.id ?? 'unknown'})` : '') +
    (sharedWithBrowser.size > 0 ? `; ${[...sharedWithBrowser].join(', ')} holds chromium too and was left alone` : '')
  return {
    said,
    async restore() {
      for (const [id, g] of groups) {
        if (autogroupOf(g.pid)?.id === id) writeFileSync(`/proc/${g.pid}/autogroup`, String(g.nice))
      }
      // Threads made since inherited the lowered value: each gets its process's old one.
      const now = await benchProcesses()
      for (const { pid } of now.filter((p) => !p.chromium)) {
        const was = threads.get(pid) ?? 0
        for (const tid of tasksOf(pid)) {
          try {
            setPriority(tid, threads.get(tid) ?? was)
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw new Error(`cannot restore thread ${tid}'s nice value (lowering one needs root): ${String(err)}`, { cause: err })
          }
        }
      }
    },
  }
}

function tasksOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number)
  } catch {
    return []
  }
}

/** `/proc/<pid>/autogroup`: "/autogroup-4886 nice 0"; undefined without autogroups. */
function autogroupOf(pid: number): { id: string; nice: number } | undefined {
  try {
    const m = /^(\S+) nice (-?\d+)/.exec(readFileSync(`/proc/${pid}/autogroup`, 'utf8'))
    return m ? { id: m[1]!, nice: Number(m[2]) } : undefined
  } catch {
    return undefined
  }
}
