import { ApiaryError, matchesSelector, type NodeInfo, parseSelector } from '@apiary/shared'

/**
 * Resolves a selector against the known nodes (online or not: an offline node that matches
 * is a target that ends `error: offline`, so the operator sees it). Sorted by id.
 */
export function resolveTargets(selectorText: string, known: NodeInfo[]): NodeInfo[] {
  const parsed = parseSelector(selectorText)
  if (!parsed.ok) throw new ApiaryError('invalid_input', `targets: ${parsed.error}`, 'targets')
  return known.filter((n) => matchesSelector(parsed.selector, n))
}
