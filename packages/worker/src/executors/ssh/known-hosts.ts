import { createHmac, timingSafeEqual } from 'node:crypto'
import { appendFile, readFile, stat } from 'node:fs/promises'

/** How a presented host key compares with what known_hosts says about the host. */
export type HostKeyVerdict = 'known' | 'unknown' | 'mismatch' | 'revoked'

export interface KnownHostEntry {
  marker: 'revoked' | 'cert-authority' | null
  /** Host patterns (plain, may use `*`, `?` and `!`), or hashed names. */
  patterns: string[]
  hashed: { salt: Buffer; hash: Buffer }[]
  type: string
  blob: Buffer
}

/** What known_hosts holds for one host name, ready to check a key without further I/O. */
export class HostKeys {
  constructor(
    readonly name: string,
    private readonly entries: readonly KnownHostEntry[],
  ) {}

  /** Key types on record, so the handshake can prefer them (as OpenSSH does). */
  get types(): string[] {
    return [...new Set(this.entries.filter((e) => e.marker === null).map((e) => e.type))]
  }

  check(blob: Buffer): HostKeyVerdict {
    if (this.entries.some((e) => e.marker === 'revoked' && e.blob.equals(blob))) return 'revoked'
    const keys = this.entries.filter((e) => e.marker === null)
    if (keys.some((e) => e.blob.equals(blob))) return 'known'
    // Another key of the same type on record: the host changed its key (or is not that host).
    // A key of a type not on record is new, as in OpenSSH.
    const type = keyType(blob)
    return keys.some((e) => e.type === type) ? 'mismatch' : 'unknown'
  }
}

/**
 * An OpenSSH known_hosts file: plain and hashed (`|1|salt|hash`) names, `[host]:port` for
 * ports other than 22, wildcard and negated patterns, `@revoked` lines. Re-read when the file
 * changes, so an operator's `ssh-keygen -R` takes effect without a restart.
 *
 * @example const kh = new KnownHosts('/etc/apiary/known_hosts'); (await kh.lookup('10.0.0.5', 22)).check(key)
 */
export class KnownHosts {
  /** Entries naming hosts plainly, by name: found without a scan. */
  #exact = new Map<string, KnownHostEntry[]>()
  /** Hashed and wildcard entries: each lookup checks every one (a hashed name needs an HMAC). */
  #scan: KnownHostEntry[] = []
  #stamp = ''
  #loading: Promise<void> | undefined
  /** Lookups by name since the last load: a fleet reconnects to the same names. */
  #cache = new Map<string, HostKeys>()
  #writing: Promise<void> = Promise.resolve()

  constructor(readonly path: string) {}

  /** The known_hosts name of a host: `host` on port 22, `[host]:port` otherwise. */
  static hostName(host: string, port: number): string {
    return port === 22 ? host : `[${host}]:${port}`
  }

  async lookup(host: string, port: number): Promise<HostKeys> {
    await this.#refresh()
    const name = KnownHosts.hostName(host, port)
    let keys = this.#cache.get(name)
    if (!keys) {
      const lower = name.toLowerCase()
      keys = new HostKeys(name, [
        ...(this.#exact.get(lower) ?? []),
        ...this.#scan.filter((e) => e.hashed.some((h) => hashMatches(h, name)) || matchPatterns(lower, e.patterns)),
      ])
      this.#cache.set(name, keys)
    }
    return keys
  }

  /** Records a key for a host (accept-new). Appends are serialised; a key on record is not added twice. */
  add(host: string, port: number, blob: Buffer): Promise<void> {
    const write = this.#writing.then(async () => {
      const keys = await this.lookup(host, port)
      if (keys.check(blob) === 'known') return
      const name = KnownHosts.hostName(host, port)
      const type = keyType(blob)
      // The next lookup sees the file changed and reads it again.
      await appendFile(this.path, `${name} ${type} ${blob.toString('base64')}\n`, { mode: 0o600 })
    })
    // The next add waits for this one whatever its outcome; the caller sees the error.
    this.#writing = write.catch(() => undefined)
    return write
  }

  /** One check (and reload) at a time, shared by every lookup waiting on it: a fan-out's first
   *  hundreds of connects read the file once, not once each. */
  #refresh(): Promise<void> {
    this.#loading ??= this.#reload().finally(() => {
      this.#loading = undefined
    })
    return this.#loading
  }

  async #reload(): Promise<void> {
    let stamp: string
    try {
      const st = await stat(this.path)
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`
    } catch (err) {
      // No file yet is an empty file (accept-new creates it).
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      stamp = 'none'
    }
    if (stamp === this.#stamp) return
    const text = stamp === 'none' ? '' : await readFile(this.path, 'utf8')
    this.#exact = new Map()
    this.#scan = []
    for (const e of parseKnownHosts(text)) {
      if (e.hashed.length > 0 || e.patterns.some((p) => /[*?!]/.test(p))) {
        this.#scan.push(e)
        continue
      }
      for (const p of new Set(e.patterns.map((x) => x.toLowerCase()))) {
        const list = this.#exact.get(p) ?? []
        list.push(e)
        this.#exact.set(p, list)
      }
    }
    this.#cache.clear()
    this.#stamp = stamp
  }
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const fields = line.split(/\s+/)
    let marker: KnownHostEntry['marker'] = null
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift()
      if (m === '@revoked') marker = 'revoked'
      else if (m === '@cert-authority') marker = 'cert-authority'
      else continue
    }
    const [hosts, type, b64] = fields
    if (!hosts || !type || !b64) continue
    const blob = Buffer.from(b64, 'base64')
    // A line whose key does not say its own type is corrupt: skip it, as OpenSSH does.
    if (blob.length === 0 || keyType(blob) !== type) continue
    const patterns: string[] = []
    const hashed: KnownHostEntry['hashed'] = []
    for (const p of hosts.split(',')) {
      if (p.startsWith('|1|')) {
        const [, , salt, hash] = p.split('|')
        if (salt && hash) hashed.push({ salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') })
      } else if (p !== '') {
        patterns.push(p.toLowerCase())
      }
    }
    out.push({ marker, patterns, hashed, type, blob })
  }
  return out
}

/** The type name at the start of an SSH public key blob (`ssh-ed25519`, `ssh-rsa`, …). */
export function keyType(blob: Buffer): string {
  if (blob.length < 4) return ''
  const len = blob.readUInt32BE(0)
  if (len > blob.length - 4 || len > 64) return ''
  return blob.subarray(4, 4 + len).toString('latin1')
}

function hashMatches(h: { salt: Buffer; hash: Buffer }, name: string): boolean {
  const mac = createHmac('sha1', h.salt).update(name).digest()
  return mac.length === h.hash.length && timingSafeEqual(mac, h.hash)
}

/** OpenSSH pattern-list semantics: some positive pattern matches and no negated one does. */
function matchPatterns(name: string, patterns: string[]): boolean {
  let matched = false
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (wildcard(name, p.slice(1))) return false
    } else if (wildcard(name, p)) {
      matched = true
    }
  }
  return matched
}

function wildcard(name: string, pattern: string): boolean {
  if (!/[*?]/.test(pattern)) return name === pattern
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.')
  return new RegExp(`^${re}$`).test(name)
}
