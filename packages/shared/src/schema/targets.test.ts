import { describe, expect, it } from 'vitest'
import { matchesSelector, parseSelector, type SelectableNode, type Selector, SelectorText } from './targets.ts'

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
