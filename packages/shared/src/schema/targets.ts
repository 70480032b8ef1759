import { z } from 'zod'

/**
 * A target selector: comma-separated terms, all of which a node must match (AND).
 *
 * - `all` matches every node;
 * - `web-*`, `db-1`: a node id or a glob of node ids (`*` any run, `?` one character);
 *   alternatives with `|`: `web-1|web-2`;
 * - `role=web`: a label (the value may be a glob, alternatives with `|`);
 * - `region=eu`: the node's region.
 *
 * @example parseSelector('role=web,region=eu')  // nodes labelled role=web in region eu
 */
export type SelectorTerm =
  | { kind: 'all' }
  | { kind: 'id'; patterns: RegExp[]; text: string }
  | { kind: 'label'; key: string; patterns: RegExp[]; text: string }

export interface Selector {
  text: string
  terms: SelectorTerm[]
}

export interface SelectableNode {
  id: string
  region: string
  labels: Record<string, string>
}

export const MAX_SELECTOR = 4096
const ID_GLOB = /^[A-Za-z0-9_.:@*?-]+$/
const KEY = /^[A-Za-z0-9][A-Za-z0-9_./-]*$/
const VALUE_GLOB = /^[A-Za-z0-9_.:/@*?-]*$/

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.')
  return new RegExp(`^${body}$`)
}

/** Parses a selector; the error message names the offending term. */
export function parseSelector(text: string): { ok: true; selector: Selector } | { ok: false; error: string } {
  if (text.length > MAX_SELECTOR) return { ok: false, error: `is longer than ${MAX_SELECTOR} characters` }
  const raw = text.split(',').map((t) => t.trim())
  if (raw.length === 0 || raw.every((t) => t === '')) return { ok: false, error: 'must not be empty (use "all" for every node)' }
  const terms: SelectorTerm[] = []
  for (const term of raw) {
    if (term === '') return { ok: false, error: `has an empty term in "${text}"` }
    if (term === 'all') {
      terms.push({ kind: 'all' })
      continue
    }
    const eq = term.indexOf('=')
    if (eq >= 0) {
      const key = term.slice(0, eq)
      const value = term.slice(eq + 1)
      if (!KEY.test(key)) return { ok: false, error: `term "${term}": "${key}" is not a label name` }
      const alts = value.split('|')
      if (alts.some((a) => a === '' || !VALUE_GLOB.test(a))) {
        return { ok: false, error: `term "${term}": "${value}" is not a label value or glob` }
      }
      terms.push({ kind: 'label', key, patterns: alts.map(globToRegExp), text: term })
      continue
    }
    const alts = term.split('|')
    if (alts.some((a) => !ID_GLOB.test(a))) {
      return { ok: false, error: `term "${term}" is neither "all", a node id or glob, nor key=value` }
    }
    terms.push({ kind: 'id', patterns: alts.map(globToRegExp), text: term })
  }
  return { ok: true, selector: { text, terms } }
}

/** A zod schema for a selector string that reports the bad term. */
export const SelectorText = z.string().superRefine((text, ctx) => {
  const parsed = parseSelector(text)
  if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.error })
})

export function matchesSelector(selector: Selector, node: SelectableNode): boolean {
  return selector.terms.every((term) => {
    switch (term.kind) {
      case 'all':
        return true
      case 'id':
        return term.patterns.some((p) => p.test(node.id))
      case 'label': {
        const value = term.key === 'region' ? node.region : node.labels[term.key]
        return value !== undefined && term.patterns.some((p) => p.test(value))
      }
    }
  })
}
