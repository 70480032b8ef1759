/**
 * Host lists in the pdsh/clush style: `web[001-250].eu.example`, `r[1-2]-n[1-3]`,
 * `web[1,3,5-7]`, and comma-separated lists of those, `web[1-3],db1`.
 *
 * - A bracket holds comma-separated numbers and ranges `a-b` (spaces around them are ignored);
 *   values come out in the order written.
 * - Several brackets in one name give every combination, the leftmost varying slowest:
 *   `r[1-2]-n[1-2]` is `r1-n1, r1-n2, r2-n1, r2-n2`.
 * - A start written with leading zeros sets the minimum width: `[01-100]` is `01 … 99, 100`.
 *   An end narrower than such a start (`[001-99]`), or an end with leading zeros of another
 *   width than its start (`[1-03]`, `[01-003]`), is ambiguous and rejected.
 * - Rejected too: `start > end`, an empty bracket or item, anything but digits, `-`, `,` in a
 *   bracket, nested or unbalanced brackets, numbers of more than 15 digits.
 *
 * @example
 * const r = parseHostList('web[001-003].eu,db1')
 * if (r.ok) expandHostList(r.list) // ['web001.eu', 'web002.eu', 'web003.eu', 'db1']
 */
export interface HostList {
  readonly text: string
  /** How many names the list expands to, computed without expanding it. */
  readonly count: number
  readonly patterns: readonly HostPattern[]
}

/** One comma-separated part of a host list: literal text and brackets in turn. */
export type HostPattern = readonly (string | readonly RangeItem[])[]

/** `start`..`end` inclusive, each number left-padded with zeros to `width`. */
export interface RangeItem {
  readonly start: number
  readonly end: number
  readonly width: number
}

const MAX_DIGITS = 15
const ITEM = /^(\d+)(?:-(\d+))?$/

type Parsed<T> = { ok: true; value: T } | { ok: false; error: string }

/**
 * Parses a host list without expanding it. The error describes the fault and is meant to follow
 * the list itself: `"web[9-1]": range start 9 is greater than end 1`.
 */
export function parseHostList(text: string): { ok: true; list: HostList } | { ok: false; error: string } {
  const parts = splitTopLevel(text)
  if (!parts.ok) return parts
  const patterns: HostPattern[] = []
  let count = 0
  for (const part of parts.value) {
    if (part === '') return { ok: false, error: text.trim() === '' ? 'is empty' : 'has an empty host name (two commas in a row, or one at an end)' }
    const pattern = parsePattern(part)
    if (!pattern.ok) return pattern
    patterns.push(pattern.value)
    count += patternCount(pattern.value)
  }
  return { ok: true, list: { text, count, patterns } }
}

/** Every name of a parsed host list, in order. Check `list.count` first: this allocates them all. */
export function expandHostList(list: HostList): string[] {
  const out: string[] = []
  for (const pattern of list.patterns) {
    let names = ['']
    for (const part of pattern) {
      if (typeof part === 'string') {
        names = names.map((n) => n + part)
        continue
      }
      const next: string[] = []
      for (const prefix of names) {
        for (const { start, end, width } of part) {
          for (let v = start; v <= end; v++) next.push(prefix + String(v).padStart(width, '0'))
        }
      }
      names = next
    }
    for (const n of names) out.push(n)
  }
  return out
}

function patternCount(pattern: HostPattern): number {
  let count = 1
  for (const part of pattern) {
    if (typeof part === 'string') continue
    count *= part.reduce((sum, item) => sum + (item.end - item.start + 1), 0)
  }
  return count
}

/** Splits on commas outside brackets, trimming each part; checks the brackets balance. */
function splitTopLevel(text: string): Parsed<string[]> {
  const parts: string[] = []
  let depth = 0
  let from = 0
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === '[') {
      if (depth > 0) return { ok: false, error: 'has a "[" inside a bracket (brackets do not nest)' }
      depth++
    } else if (c === ']') {
      if (depth === 0) return { ok: false, error: 'has a "]" without a "[" before it' }
      depth--
    } else if (c === ',' && depth === 0) {
      parts.push(text.slice(from, i).trim())
      from = i + 1
    }
  }
  if (depth > 0) return { ok: false, error: 'has a "[" that is never closed' }
  parts.push(text.slice(from).trim())
  return { ok: true, value: parts }
}

function parsePattern(part: string): Parsed<HostPattern> {
  const out: (string | RangeItem[])[] = []
  let i = 0
  while (i < part.length) {
    const open = part.indexOf('[', i)
    if (open < 0) {
      out.push(part.slice(i))
      break
    }
    if (open > i) out.push(part.slice(i, open))
    const close = part.indexOf(']', open) // balanced: splitTopLevel checked
    const items = parseBracket(part.slice(open + 1, close))
    if (!items.ok) return items
    out.push(items.value)
    i = close + 1
  }
  return { ok: true, value: out }
}

function parseBracket(body: string): Parsed<RangeItem[]> {
  if (body.trim() === '') return { ok: false, error: `range "[${body}]" is empty` }
  const items: RangeItem[] = []
  for (const raw of body.split(',')) {
    const text = raw.trim()
    if (text === '') return { ok: false, error: `range "[${body}]" has an empty item` }
    const m = ITEM.exec(text)
    if (!m) return { ok: false, error: `"${text}" in "[${body}]" is not a number or a range of numbers such as 1-10` }
    const a = m[1]!
    const b = m[2] ?? a
    if (a.length > MAX_DIGITS || b.length > MAX_DIGITS) {
      return { ok: false, error: `"${text}" has a number of more than ${MAX_DIGITS} digits` }
    }
    const start = Number(a)
    const end = Number(b)
    if (start > end) return { ok: false, error: `range start ${a} is greater than end ${b}` }
    const padded = (s: string) => s.length > 1 && s.startsWith('0')
    const width = padded(a) ? a.length : 0
    if (padded(b) && b.length !== a.length) {
      return { ok: false, error: `range "${text}": the end ${b} is zero-padded to another width than the start ${a}; give both the same number of digits` }
    }
    if (width > 0 && b.length < width) {
      return { ok: false, error: `range "${text}": the end ${b} is narrower than the zero-padded start ${a}; write it as ${b.padStart(width, '0')}` }
    }
    items.push({ start, end, width })
  }
  return { ok: true, value: items }
}
