/** One line of a diff: kept (` `), only in the majority's output (`-`), only in this group's (`+`). */
export interface DiffLine {
  op: ' ' | '-' | '+'
  text: string
}

/** Lines compared at most, per side: samples are a few KiB, and the table is lines × lines. */
export const MAX_DIFF_LINES = 400

/**
 * A line diff of `from` (the majority's output) to `to` (an outlier's), by the longest common
 * subsequence of lines. Bounded: past `MAX_DIFF_LINES` on either side the rest is compared as
 * one block (all removed, all added), so a huge sample cannot stall the page.
 *
 * @example lineDiff('a\nb\n', 'a\nc\n') // [{op:' ',text:'a'}, {op:'-',text:'b'}, {op:'+',text:'c'}]
 */
export function lineDiff(from: string, to: string): DiffLine[] {
  const split = (s: string) => (s === '' ? [] : s.replace(/\n$/, '').split('\n'))
  const a = split(from)
  const b = split(to)
  const n = Math.min(a.length, MAX_DIFF_LINES)
  const m = Math.min(b.length, MAX_DIFF_LINES)
  // lcs[i][j]: the longest common subsequence of a[i..n) and b[j..m).
  const lcs = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1))
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!)
  }
  const out: DiffLine[] = []
  let i = 0
  let j = 0
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ op: ' ', text: a[i]! })
      i++
      j++
    } else if (lcs[i + 1]![j]! >= lcs[i]![j + 1]!) out.push({ op: '-', text: a[i++]! })
    else out.push({ op: '+', text: b[j++]! })
  }
  for (; i < a.length; i++) out.push({ op: '-', text: a[i]! })
  for (; j < b.length; j++) out.push({ op: '+', text: b[j]! })
  return out
}
