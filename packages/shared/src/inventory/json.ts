/**
 * A strict JSON scanner for the three things `JSON.parse` cannot tell us: where a syntax error
 * is (V8's messages give no position for some errors, and their wording differs between Node
 * versions), whether an object repeats a key (`JSON.parse` silently keeps the last one — a
 * repeated group name would drop a whole group), and where a member sits (for error lines).
 * `JSON.parse` still builds the value: it is many times faster than anything written here.
 */

export type JsonPath = readonly (string | number)[]

export interface JsonProblem {
  offset: number
  message: string
  /** Path of the member the problem is in or at. */
  path: JsonPath
}

/** Deeper than any valid inventory could be; keeps the recursion far from the stack limit. */
const MAX_DEPTH = 64
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y
const LITERAL = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y

/**
 * Scans `text`; returns its first syntax error or repeated key, if any. `visit` sees every
 * object member (at its key) and array element (at its value) before its value is scanned;
 * returning `true` stops the scan (the result is then `undefined`).
 */
export function scanJson(text: string, visit?: (path: JsonPath, offset: number) => boolean): JsonProblem | undefined {
  let i = 0
  const path: (string | number)[] = []
  let problem: JsonProblem | undefined

  const fail = (message: string, at = i): false => {
    problem = { offset: at, message, path: [...path] }
    return false
  }
  const found = () => (i < text.length ? `found ${JSON.stringify(text[i])}` : 'the input ends')
  const skipSpace = () => {
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i)
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break
    }
  }

  /** Scans a string at `i`; its value, or undefined after recording a problem. */
  const string = (): string | undefined => {
    STRING.lastIndex = i
    const m = STRING.exec(text)
    if (m) {
      i = STRING.lastIndex
      return m[0].includes('\\') ? (JSON.parse(m[0]) as string) : m[0].slice(1, -1)
    }
    // Locate the fault for the message.
    for (let j = i + 1; j < text.length; j++) {
      const c = text.charCodeAt(j)
      if (c === 0x22) break
      if (c < 0x20) return void fail('a control character (such as a line break) inside a string; write it as an escape such as \\n', j)
      if (c === 0x5c) {
        if (!/^(["\\/bfnrt]|u[0-9a-fA-F]{4})/.test(text.slice(j + 1, j + 6))) return void fail('an invalid escape in a string', j)
        j++
      }
    }
    return void fail('a string that is never closed')
  }

  const value = (depth: number): boolean => {
    skipSpace()
    const c = text[i]
    if (c === '{' || c === '[') {
      if (depth >= MAX_DEPTH) return fail(`nested more than ${MAX_DEPTH} levels deep`)
      return c === '{' ? object(depth + 1) : array(depth + 1)
    }
    if (c === '"') return string() !== undefined
    LITERAL.lastIndex = i
    if (LITERAL.test(text)) {
      i = LITERAL.lastIndex
      return true
    }
    return fail(`expected a value but ${found()}`)
  }

  const object = (depth: number): boolean => {
    i++
    skipSpace()
    if (text[i] === '}') {
      i++
      return true
    }
    const keys = new Set<string>()
    for (;;) {
      skipSpace()
      const at = i
      if (text[i] !== '"') return fail(text[i] === '}' ? 'a comma before "}"' : `expected a double-quoted key but ${found()}`)
      const key = string()
      if (key === undefined) return false
      path.push(key)
      if (keys.has(key)) return fail(`the key ${JSON.stringify(key)} appears twice in one object`, at)
      keys.add(key)
      if (visit?.(path, at)) return false
      skipSpace()
      if (text[i] !== ':') return fail(`expected ":" after the key ${JSON.stringify(key)} but ${found()}`)
      i++
      if (!value(depth)) return false
      path.pop()
      const next = afterItem('}')
      if (next !== 'more') return next
    }
  }

  /** After an item of an object or array: `more` after a comma, true at the closing bracket. */
  const afterItem = (close: '}' | ']'): 'more' | boolean => {
    skipSpace()
    if (text[i] === ',' || text[i] === close) return text[i++] === ',' ? 'more' : true
    return fail(`expected "," or "${close}" but ${found()}`)
  }

  const array = (depth: number): boolean => {
    i++
    skipSpace()
    if (text[i] === ']') {
      i++
      return true
    }
    for (let index = 0; ; index++) {
      skipSpace()
      if (text[i] === ']') return fail('a comma before "]"')
      path.push(index)
      if (visit?.(path, i)) return false
      if (!value(depth)) return false
      path.pop()
      const next = afterItem(']')
      if (next !== 'more') return next
    }
  }

  if (value(0)) {
    skipSpace()
    if (i < text.length) fail(`unexpected ${JSON.stringify(text[i])} after the end of the document`)
  }
  return problem
}
