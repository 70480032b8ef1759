import { isIPv4 } from 'node:net'
import { ApiaryError } from '../errors.ts'

/** The most queens one client takes: a leader and its standbys, not a fleet to scan. */
export const MAX_QUEENS = 8

/**
 * The queens' base URLs from `--queen URL[,URL…]` (or a list), in the order given, trailing
 * slashes removed. Each must be http:// or https://, without a credential (the API token goes in
 * a file: a URL shows in process lists and logs), a query or a fragment; none twice. A plain
 * http:// URL must name this machine (see `isLoopbackHost`) unless `insecure`: the API token
 * would cross the network in clear text. Errors name `source`, and never repeat a URL that
 * holds a credential.
 *
 * @example
 * parseQueenUrls('https://q1:7070,https://q2:7070/', '--queen') // ['https://q1:7070', 'https://q2:7070']
 */
export function parseQueenUrls(text: string | readonly string[], source = '--queen', opts: { insecure?: boolean } = {}): string[] {
  const given = (typeof text === 'string' ? text.split(',') : text).map((u) => u.trim()).filter(Boolean)
  const fail = (message: string) => new ApiaryError('invalid_input', message, source)
  if (given.length === 0) throw fail(`${source}: no queen URL given`)
  if (given.length > MAX_QUEENS) throw fail(`${source}: ${given.length} queens given, at most ${MAX_QUEENS}`)
  const queens: string[] = []
  for (const [i, u] of given.entries()) {
    const where = given.length > 1 ? `queen ${i + 1} of ${source}` : source
    // user:pass@ or token@: refused without repeating it.
    if (u.includes('@')) throw fail(`${where} holds a credential in its URL (it would show in process lists and logs): the API token goes in a file (--token-file)`)
    let url: URL
    try {
      url = new URL(u)
    } catch (err) {
      throw new ApiaryError('invalid_input', `${where}: "${u}" is not a URL (http://host:port)`, source, { cause: err })
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw fail(`${where}: "${u}" must start with http:// or https://`)
    if (/[?#]/.test(u)) throw fail(`${where}: "${u}" must be http(s)://host:port[/path], without a query or fragment`)
    const base = url.href.replace(/\/+$/, '')
    if (queens.includes(base)) throw fail(`${source}: ${base} is given twice`)
    if (url.protocol === 'http:' && !isLoopbackHost(url.hostname) && opts.insecure !== true) {
      throw fail(
        `${where}: ${url.origin} is plain HTTP to another machine, so the API token would travel in clear text: ` +
          'serve the queen over HTTPS (apiary-queen --tls-cert and --tls-key) and use https:// (with --ca FILE for a private CA), or pass --insecure on a network you trust',
      )
    }
    queens.push(base)
  }
  return queens
}

/**
 * Whether a URL's host is this machine: 127.0.0.0/8, ::1 or localhost. Only these may be
 * reached over plain HTTP without `--insecure`.
 * @example isLoopbackHost('[::1]') // true
 */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase()
  if (h === 'localhost' || h === '::1') return true
  return isIPv4(h) && h.startsWith('127.')
}
