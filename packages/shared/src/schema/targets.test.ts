import { describe, expect, it } from 'vitest'
import { Glob, matchesSelector, parseSelector, type SelectableNode, type Selector, SelectorText } from './targets.ts'

function sel(text: string): Selector {
  const r = parseSelector(text)
  if (!r.ok) throw new Error(`expected "${text}" to parse: ${r.error}`)
  return r.selector
}

function parseError(text: string): string {
  const r = parseSelector(text)
  if (r.ok) throw new Error(`expected "${text}" to be rejected`)
  return r.error
}

const node = (id: string, region = 'eu', labels: Record<string, string> = {}): SelectableNode => ({ id, region, labels })

const fleet: SelectableNode[] = [
  node('web-1', 'eu', { role: 'web', tier: 'front' }),
  node('web-2', 'us', { role: 'web', tier: 'front' }),
  node('web-10', 'eu', { role: 'web' }),
  node('db-1', 'eu', { role: 'db' }),
  node('db-2.example.com', 'us', { role: 'db', 'k8s.io/zone': 'us-east/1a' }),
  node('cache', 'ap', {}),
]

/** The ids of the fleet a selector picks. */
const pick = (text: string) => fleet.filter((n) => matchesSelector(sel(text), n)).map((n) => n.id)

describe('parseSelector', () => {
  it('parses "all"', () => {
    expect(sel('all').terms).toEqual([{ kind: 'all' }])
  })

  it('parses ids, globs and alternatives into id terms', () => {
    const s = sel('web-*|db-?')
    expect(s.terms).toHaveLength(1)
    expect(s.terms[0]).toMatchObject({ kind: 'id', text: 'web-*|db-?' })
    expect(s.text).toBe('web-*|db-?')
  })

  it('parses labels and region as label terms', () => {
    expect(sel('role=web|db').terms).toMatchObject([{ kind: 'label', key: 'role', text: 'role=web|db' }])
    expect(sel('region=eu').terms).toMatchObject([{ kind: 'label', key: 'region' }])
  })

  it('parses comma-separated terms, trimming spaces around them', () => {
    expect(sel('role=web, region=eu ,web-*').terms.map((t) => t.kind)).toEqual(['label', 'label', 'id'])
  })

  it('rejects an empty selector, suggesting "all"', () => {
    expect(parseError('')).toContain('"all"')
    expect(parseError('  ')).toContain('must not be empty')
  })

  it('rejects an empty term', () => {
    expect(parseError('web-1,,db-1')).toContain('empty term')
    expect(parseError('web-1,')).toContain('empty term')
  })

  it('names the bad term in every error', () => {
    const cases: Array<[string, string]> = [
      ['web-1,we b', 'we b'],
      ['web[1]', 'web[1]'],
      ['role=web,=eu', '=eu'],
      ['role=', 'role='],
      ['role=web|', 'role=web|'],
      ['web-1|', 'web-1|'],
      ['ro le=x', 'ro le=x'],
      ['role=we b', 'role=we b'],
      ['a=b=c', 'a=b=c'],
      ['all,web-1,$(reboot)', '$(reboot)'],
    ]
    for (const [text, term] of cases) expect(parseError(text), text).toContain(`"${term}"`)
  })

  it('rejects an overlong selector', () => {
    expect(parseError('a'.repeat(4097))).toContain('4096')
    expect(parseSelector('a'.repeat(4096)).ok).toBe(true)
  })
})

describe('matchesSelector', () => {
  it('"all" matches every node', () => {
    expect(pick('all')).toEqual(fleet.map((n) => n.id))
  })

  it('matches an exact id and nothing that merely starts with it', () => {
    expect(pick('web-1')).toEqual(['web-1'])
    expect(pick('db-2.example.com')).toEqual(['db-2.example.com'])
  })

  it('treats "." in an id literally, not as a regex wildcard', () => {
    expect(matchesSelector(sel('db-2.example.com'), node('db-2xexample.com'))).toBe(false)
    expect(matchesSelector(sel('role=a.b'), node('n', 'eu', { role: 'axb' }))).toBe(false)
  })

  it('matches `*` to any run and `?` to one character', () => {
    expect(pick('web-*')).toEqual(['web-1', 'web-2', 'web-10'])
    expect(pick('web-?')).toEqual(['web-1', 'web-2'])
    expect(pick('*.example.com')).toEqual(['db-2.example.com'])
    expect(pick('*')).toEqual(fleet.map((n) => n.id))
  })

  it('matches any of `|` alternatives', () => {
    expect(pick('web-1|db-1|nope')).toEqual(['web-1', 'db-1'])
    expect(pick('web-1?|cache')).toEqual(['web-10', 'cache'])
  })

  it('matches labels, with globs and alternatives in the value', () => {
    expect(pick('role=web')).toEqual(['web-1', 'web-2', 'web-10'])
    expect(pick('role=d*')).toEqual(['db-1', 'db-2.example.com'])
    expect(pick('role=web|db')).toEqual(['web-1', 'web-2', 'web-10', 'db-1', 'db-2.example.com'])
    expect(pick('k8s.io/zone=us-east/*')).toEqual(['db-2.example.com'])
  })

  it('never matches a label the node lacks, even with `*`', () => {
    expect(pick('tier=*')).toEqual(['web-1', 'web-2'])
  })

  it('matches a label only a node has: never an Object property (constructor=*, toString=*)', () => {
    for (const key of ['constructor', 'toString', 'hasOwnProperty', 'valueOf']) expect(pick(`${key}=*`), key).toEqual([])
  })

  it('matches region= against the node region, not a label', () => {
    expect(pick('region=eu')).toEqual(['web-1', 'web-10', 'db-1'])
    expect(pick('region=us|ap')).toEqual(['web-2', 'db-2.example.com', 'cache'])
    // A label named region does not count.
    expect(matchesSelector(sel('region=eu'), node('x', 'us', { region: 'eu' }))).toBe(false)
  })

  it('ANDs terms', () => {
    expect(pick('role=web,region=eu')).toEqual(['web-1', 'web-10'])
    expect(pick('web-*,tier=front,region=us')).toEqual(['web-2'])
    expect(pick('all,role=db')).toEqual(['db-1', 'db-2.example.com'])
    expect(pick('role=web,role=db')).toEqual([])
  })

  it('is case-sensitive', () => {
    expect(pick('WEB-1')).toEqual([])
    expect(pick('role=Web')).toEqual([])
  })
})

describe('SelectorText', () => {
  it('accepts a good selector and reports the bad term of a bad one', () => {
    expect(SelectorText.parse('role=web,region=eu')).toBe('role=web,region=eu')
    const r = SelectorText.safeParse('role=web,we b')
    expect(r.success).toBe(false)
    expect(r.error!.issues[0]!.message).toContain('"we b"')
  })
})

/** What a glob means, by dynamic programming over (pattern, text) positions: slow, plainly right. */
function reference(glob: string, text: string): boolean {
  const memo = new Map<number, boolean>()
  const go = (i: number, j: number): boolean => {
    const key = i * (text.length + 1) + j
    const hit = memo.get(key)
    if (hit !== undefined) return hit
    let r: boolean
    if (i === glob.length) r = j === text.length
    else if (glob[i] === '*') r = go(i + 1, j) || (j < text.length && go(i, j + 1))
    else r = j < text.length && (glob[i] === '?' || glob[i] === text[j]) && go(i + 1, j + 1)
    memo.set(key, r)
    return r
  }
  return go(0, 0)
}

describe('Glob', () => {
  it('agrees with a plain dynamic-programming matcher on thousands of small cases', () => {
    // A fixed xorshift sequence: the same cases every run.
    let seed = 0x9e3779b9
    const next = (n: number) => {
      seed ^= seed << 13
      seed ^= seed >>> 17
      seed ^= seed << 5
      return (seed >>> 0) % n
    }
    const word = (alphabet: string, max: number) => Array.from({ length: next(max + 1) }, () => alphabet[next(alphabet.length)]).join('')
    for (let i = 0; i < 5000; i++) {
      const glob = word('ab*?', 8)
      const text = word('ab', 10)
      expect(new Glob(glob).test(text), `${glob} ~ ${text}`).toBe(reference(glob, text))
    }
  })

  // No timing: the comparisons are counted. A backtracking matcher needs more than
  // C(253, 100) steps for these, a number with 72 digits: it would not finish at all.
  it('crosses each star once: comparisons stay linear in the text and the pattern', () => {
    const id = 'a'.repeat(253)
    for (const glob of ['*a*a*a*a*a*a*a*a*b', `${'*a'.repeat(100)}*b`, `*${'a'.repeat(120)}b*`, `${'*'.repeat(2000)}b`, `*${'ab'.repeat(60)}*`]) {
      const steps = { n: 0 }
      expect(new Glob(glob).test(id, steps), glob).toBe(false)
      expect(steps.n, glob).toBeLessThanOrEqual(2 * (id.length + glob.length))
    }
    const steps = { n: 0 }
    expect(new Glob(`${'*a'.repeat(100)}*`).test(id, steps)).toBe(true)
    expect(steps.n).toBeLessThanOrEqual(2 * (id.length + 201))
  })

  it('tries a run holding `?` at each place once: at most (text × run) comparisons', () => {
    const id = 'a'.repeat(253)
    const run = `${'?'.repeat(60)}b`
    const steps = { n: 0 }
    expect(new Glob(`*${run}*`).test(id, steps)).toBe(false)
    expect(steps.n).toBeLessThanOrEqual(id.length * run.length)
  })

  it('matches a selector of the longest allowed size against the longest id, once per node', () => {
    const glob = `${'*a'.repeat(2047)}*`
    expect(parseSelector(glob).ok).toBe(true)
    expect(matchesSelector(sel(glob), node('a'.repeat(253)))).toBe(false)
    expect(matchesSelector(sel(`${'*a'.repeat(100)}*`), node('a'.repeat(253)))).toBe(true)
  })
})
