const wallAtStart = Date.now()
const monoAtStart = performance.now()

/**
 * Whole milliseconds since the epoch that never jump: the wall time when this process started plus
 * monotonic time since. Deadlines armed on it keep their length when the system clock is set
 * back or forward (an NTP step); `Date.now()` would stretch or cut them by the step.
 *
 * @example const deadline = steadyNow() + 30_000
 */
export function steadyNow(): number {
  return Math.floor(wallAtStart + (performance.now() - monoAtStart))
}
