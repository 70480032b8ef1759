/**
 * Runs `fn` over `items` with at most `limit` calls in flight; settles when every call has.
 * Returns the errors (the rest carried on), so one bad connection does not hide the others.
 */
export async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<unknown[]> {
  const errors: unknown[] = []
  let next = 0
  const lane = async () => {
    while (next < items.length) {
      const i = next++
      try {
        await fn(items[i]!, i)
      } catch (err) {
        errors.push(err)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane))
  return errors
}
