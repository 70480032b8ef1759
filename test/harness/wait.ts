/**
 * Polls `check` until it holds, for state that has no event to await (presence expiring, a
 * process leaving the process table). Bounded: fails after `timeoutMs`.
 */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000, everyMs = 25): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
