import { readFile, stat } from 'node:fs/promises'
import { homedir, userInfo } from 'node:os'
import { dirname, resolve } from 'node:path'
import { isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml'
import type { z } from 'zod'
import { ApiaryError, errorMessage } from '../errors.ts'
import { LabelKey, LabelValue, NodeId, Region } from '../schema/ids.ts'
import { type JsonPath, scanJson } from './json.ts'
import { expandHostList, parseHostList } from './range.ts'

/**
 * One node of an inventory, every setting resolved: the node's own over its group's over the
 * defaults. It is a `SelectableNode`, so selectors pick inventory nodes as they pick agents.
 */
export interface InventoryNode {
  readonly id: string
  /** Host name or IP address to connect to. */
  readonly address: string
  readonly port: number
  readonly user: string
  readonly region: string
  readonly labels: Readonly<Record<string, string>>
  /** Absolute path of the private key; absent: the SSH agent (`SSH_AUTH_SOCK`). */
  readonly identityFile?: string
  /** Absolute path of a file holding the key's passphrase. */
  readonly passphraseFile?: string
  /** The group the node was listed in; absent for ungrouped nodes. */
  readonly group?: string
}

export interface Inventory {
  /** The file as it was named to `loadInventory` or `parseInventory`. */
  readonly file: string
  /** In the order written: each group's hosts then its nodes, group by group; then the ungrouped hosts, then the ungrouped nodes. */
  readonly nodes: readonly InventoryNode[]
}

export interface InventoryOptions {
  /** What `~` in a key path expands to; default: the home directory of the process (`os.homedir()`). */
  home?: string
  /**
   * The user for nodes whose file sets none; default: the user running the process, as with
   * `ssh`. `null`: no fallback, every node must get its user from the file (processes that
   * each load the file then agree on it).
   */
  user?: string | null
}

/** The most nodes one inventory may hold, after ranges expand. */
export const MAX_INVENTORY_NODES = 100_000
/** The largest inventory file `loadInventory` reads. */
export const MAX_INVENTORY_BYTES = 64 * 1024 * 1024

const DEFAULT_PORT = 22
const DEFAULT_REGION = 'default'

const SETTING_KEYS = ['user', 'port', 'identityFile', 'passphraseFile', 'region', 'labels'] as const
const TOP_KEYS = ['defaults', 'groups', 'hosts', 'nodes'] as const
const GROUP_KEYS = [...SETTING_KEYS, 'hosts', 'nodes'] as const
const NODE_KEYS = ['id', 'address', ...SETTING_KEYS] as const

const GROUP_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/
const USER = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$/
const ADDRESS = /^[A-Za-z0-9_.:%-]+$/

/**
 * Reads an inventory: the agentless (SSH) nodes apiary may reach, from YAML or JSON text (a
 * `.json` file is read as JSON, anything else as YAML).
 *
 * ```yaml
 * defaults:                  # every node, unless its group or the node itself says otherwise
 *   user: deploy             # default: the user running the process, as with ssh
 *   port: 22                 # default: 22
 *   identityFile: ~/.ssh/id_ed25519   # "~/" is the home directory (a bare ~ is YAML null);
 *   passphraseFile: ~/.ssh/id_pass    #   relative paths start at the inventory file's directory
 *   region: default          # default: "default"
 *   labels: { env: prod }
 * groups:
 *   web:                     # group names start with a letter: letters, digits, '_', '-'
 *     region: eu
 *     labels: { role: web }  # labels merge: node over group over defaults
 *     hosts:                 # host names or lists; the node id is the host name
 *       - web[001-250].eu.example        # ranges expand: web001.eu.example … web250.eu.example
 *       - edge[1-2]-n[1-3],cache1        # several brackets multiply; commas separate names
 *   db:
 *     user: postgres
 *     identityFile: null     # null clears an inherited key: this group uses the SSH agent
 *     labels: { role: db }
 *     nodes:                 # one mapping per node, when a node needs its own settings
 *       - { id: db-1, address: 10.0.0.5, port: 2222, labels: { primary: "true" } }
 *       - { address: 10.0.0.6 }          # id defaults to the address, address to the id
 * hosts: [ jump1 ]           # ungrouped hosts and nodes: the defaults alone apply
 * nodes:
 *   - { id: bastion, address: 192.0.2.10 }
 * ```
 *
 * Rules: every key is known (a misspelt one is rejected with a suggestion); ids are unique
 * across the file; ids, regions and labels are those of agent nodes (`NodeId`, `Region`,
 * `LabelKey`, `LabelValue`; a label may not be called `region`, which selectors read from the
 * node's region); label values are strings (quote `"true"`, `"12"`); ports are integers from 1
 * to 65535; a `passphraseFile` goes with the `identityFile` set beside it or in a more
 * specific place (a group naming another key does not inherit the defaults' passphrase), and
 * needs one; at most `MAX_INVENTORY_NODES` nodes
 * after expansion. An empty file is an empty inventory. Key files are not read here: the SSH
 * executor reads them when it connects. See `parseHostList` for the range syntax.
 *
 * Cost: ranges expand at about a million names a second, but the YAML parser spends some 70 µs
 * on each node written out in full; a generated inventory of tens of thousands of explicit
 * nodes loads many times faster as JSON.
 *
 * Every fault is an `invalid_input` ApiaryError naming the file, line and column, the entry and
 * the field, e.g. `inventory.yaml:12:9: groups.web.hosts[0]: "web[9-1]": range start 9 is
 * greater than end 1`; its `field` is the path (`groups.web.hosts[0]`, `nodes[2].port`).
 *
 * @example
 * const inventory = parseInventory(text, 'inventory.yaml')
 * inventory.nodes.filter((n) => matchesSelector(selector, n))
 */
export function parseInventory(text: string, file: string, options: InventoryOptions = {}): Inventory {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text
  const source = readSource(body, file)
  return new Resolver(file, body, source, options).resolve(source.data)
}

/**
 * Reads and parses an inventory file (see `parseInventory`). A missing, unreadable or oversized
 * file is an `invalid_input` error naming it.
 *
 * @example
 * const inventory = await loadInventory(config.inventory) // rejects with the file, entry, field
 */
export async function loadInventory(path: string, options: InventoryOptions = {}): Promise<Inventory> {
  const st = await stat(path).catch((err: unknown) => {
    throw readError(path, err)
  })
  if (st.isDirectory()) throw new ApiaryError('invalid_input', `inventory file ${path} is a directory`, 'inventory')
  // FIFOs pass (`--inventory <(generate)`); their size is unknown until read.
  if (st.size > MAX_INVENTORY_BYTES) {
    throw new ApiaryError('invalid_input', `inventory file ${path} is larger than ${MAX_INVENTORY_BYTES / 1024 / 1024} MiB`, 'inventory')
  }
  const text = await readFile(path, 'utf8').catch((err: unknown) => {
    throw readError(path, err)
  })
  return parseInventory(text, path, options)
}

function readError(path: string, err: unknown): ApiaryError {
  const code = (err as NodeJS.ErrnoException).code
  const message =
    code === 'ENOENT' || code === 'ENOTDIR'
      ? `inventory file ${path} does not exist`
      : code === 'EACCES' || code === 'EPERM'
        ? `cannot read inventory file ${path}: permission denied`
        : `cannot read inventory file ${path}: ${code ?? errorMessage(err)}`
  return new ApiaryError('invalid_input', message, 'inventory', { cause: err })
}

// ---- source text -------------------------------------------------------------------------

/** The parsed value, and where a path of it was written (for error positions). */
export interface Source {
  data: unknown
  locate(path: JsonPath): number | undefined
}

/** Parses YAML or JSON text (JSON for a `.json` file), refusing a syntax error with its line and column. */
export function readSource(text: string, file: string): Source {
  if (text.trim() === '') return { data: null, locate: () => undefined }
  return /\.json$/i.test(file) ? readJson(text, file) : readYaml(text, file)
}

function readJson(text: string, file: string): Source {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    const problem = scanJson(text)
    throw new ApiaryError('invalid_input', `${file}${position(text, problem?.offset)}: invalid JSON: ${problem?.message ?? errorMessage(err)}`, 'inventory', {
      cause: err,
    })
  }
  const repeated = scanJson(text)
  if (repeated) throw new ApiaryError('invalid_input', `${file}${position(text, repeated.offset)}: invalid JSON: ${repeated.message}`, 'inventory')
  return {
    data,
    locate(path) {
      // The member itself, or failing that its nearest enclosing one.
      let best: number | undefined
      let bestLength = 0
      scanJson(text, (at, offset) => {
        if (at.length > bestLength && at.length <= path.length && at.every((seg, i) => seg === path[i])) {
          best = offset
          bestLength = at.length
        }
        return bestLength === path.length
      })
      return best
    },
  }
}

function readYaml(text: string, file: string): Source {
  const doc = parseDocument(text, { prettyErrors: false, stringKeys: true, uniqueKeys: true, logLevel: 'error' })
  const first = doc.errors[0]
  if (first) {
    let message = first.message.replace(/^./, (c) => c.toLowerCase())
    if (first.code === 'DUPLICATE_KEY') {
      const m = /^(?:"([^"]*)"|'([^']*)'|([^\s:,{}[\]]+))/.exec(text.slice(first.pos[0]))
      const key = m?.[1] ?? m?.[2] ?? m?.[3]
      message = key === undefined ? 'a key appears twice in one mapping' : `the key ${JSON.stringify(key)} appears twice in one mapping`
    }
    throw new ApiaryError('invalid_input', `${file}${position(text, first.pos[0])}: invalid YAML: ${message}`, 'inventory', { cause: first })
  }
  let data: unknown
  try {
    data = doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    // An alias to a missing anchor, or aliases expanding past maxAliasCount.
    throw new ApiaryError('invalid_input', `${file}: invalid YAML: ${errorMessage(err)}`, 'inventory', { cause: err })
  }
  return {
    data,
    locate(path) {
      let node: unknown = doc.contents
      let offset: number | undefined
      for (const seg of path) {
        if (isAlias(node)) node = node.resolve(doc)
        if (isMap(node)) {
          const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg))
          if (!pair) break
          offset = (pair.key as { range?: [number, number, number] }).range?.[0] ?? offset
          node = pair.value
        } else if (isSeq(node) && typeof seg === 'number') {
          node = node.items[seg]
          offset = (node as { range?: [number, number, number] } | undefined)?.range?.[0] ?? offset
        } else break
      }
      return offset
    },
  }
}

/** Line and column (both from 1) of an offset. */
function lineCol(text: string, offset: number | undefined): { line: number; col: number } | undefined {
  if (offset === undefined) return undefined
  let line = 1
  let lineStart = 0
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++
    lineStart = i + 1
  }
  return { line, col: offset - lineStart + 1 }
}

/** `:line:col`, or nothing when the offset is unknown. */
export function position(text: string, offset: number | undefined): string {
  const at = lineCol(text, offset)
  return at === undefined ? '' : `:${at.line}:${at.col}`
}

// ---- resolution --------------------------------------------------------------------------

type Path = JsonPath
type Mapping = Record<string, unknown>

/** Settings as written at one level; `null` paths clear an inherited one. */
interface Settings {
  user?: string
  port?: number
  identityFile?: string | null
  passphraseFile?: string | null
  region?: string
  labels?: Record<string, string>
}

/** Everything a node has but its id and address. */
type Base = Omit<InventoryNode, 'id' | 'address'>

class Resolver {
  private readonly nodes: InventoryNode[] = []
  /** Where each id was listed, for the duplicate message. */
  private readonly seen = new Map<string, Path>()
  private readonly base: string
  private readonly home: string
  private readonly user: string | undefined

  constructor(
    private readonly file: string,
    private readonly text: string,
    private readonly source: Source,
    options: InventoryOptions,
  ) {
    this.base = dirname(resolve(file))
    this.home = options.home ?? homedir()
    this.user = options.user === undefined ? localUser() : (options.user ?? undefined)
  }

  resolve(data: unknown): Inventory {
    const top = data === null ? {} : this.mapping(data, [], `a mapping with any of the keys ${TOP_KEYS.join(', ')}`)
    this.checkKeys(top, TOP_KEYS, [])
    const rawDefaults = own(top, 'defaults')
    const defaults = rawDefaults == null ? {} : this.settings(this.mapping(rawDefaults, ['defaults']), ['defaults'], SETTING_KEYS)

    const rawGroups = own(top, 'groups')
    if (rawGroups != null) {
      const groups = this.mapping(rawGroups, ['groups'], 'a mapping of group names to groups')
      for (const [name, value] of Object.entries(groups)) {
        if (!GROUP_NAME.test(name)) {
          this.fail(['groups'], `${JSON.stringify(name)} is not a group name: it must start with a letter and hold only letters, digits, '_' or '-' (at most 63)`, [name], false)
        }
        const at = ['groups', name]
        const group = value === null ? {} : this.mapping(value, at)
        const settings = this.settings(group, at, GROUP_KEYS)
        this.members(group, at, name, [defaults, settings])
      }
    }
    this.members(top, [], undefined, [defaults])
    return Object.freeze({ file: this.file, nodes: Object.freeze(this.nodes) })
  }

  /** A group's (or the top level's) `hosts`, then its `nodes`. */
  private members(owner: Mapping, at: Path, group: string | undefined, levels: Settings[]): void {
    const hosts = own(owner, 'hosts')
    if (typeof hosts === 'string') this.hosts(hosts, [...at, 'hosts'], group, levels)
    else if (Array.isArray(hosts)) hosts.forEach((item, i) => this.hosts(item, [...at, 'hosts', i], group, levels))
    else if (hosts != null) this.fail(at, `must be a list of host names or ranges, such as [ "web[01-10].example" ] (got ${show(hosts)})`, ['hosts'])

    const nodes = own(owner, 'nodes')
    if (Array.isArray(nodes)) nodes.forEach((item, i) => this.node(item, [...at, 'nodes', i], group, levels))
    else if (nodes != null) this.fail(at, `must be a list of nodes, such as [ { id: db-1, address: 10.0.0.5 } ] (got ${show(nodes)})`, ['nodes'])
  }

  private hosts(item: unknown, entry: Path, group: string | undefined, levels: Settings[]): void {
    if (typeof item !== 'string') this.fail(entry, `must be a host name or range such as "web[01-10].example" (got ${show(item)})`)
    const parsed = parseHostList(item)
    if (!parsed.ok) this.fail(entry, `${JSON.stringify(item)}: ${parsed.error}`)
    const { count } = parsed.list
    this.reserve(count, entry, `${JSON.stringify(item)} expands to ${count} hosts`)
    const base = this.merge(levels, entry, group)
    for (const host of expandHostList(parsed.list)) {
      const problem = addressProblem(host) ?? schemaProblem(NodeId, host)
      if (problem !== undefined) {
        this.fail(entry, `${host === item ? '' : `${JSON.stringify(item)}: `}${JSON.stringify(host)} is not a host name: it ${problem}`)
      }
      this.add({ id: host, address: host, ...base }, entry, item)
    }
  }

  private node(value: unknown, entry: Path, group: string | undefined, levels: Settings[]): void {
    const hint = typeof value === 'string' ? '; to list host names, use hosts' : ''
    const node = this.mapping(value, entry, 'a mapping such as { id: db-1, address: 10.0.0.5 }', hint)
    const settings = this.settings(node, entry, NODE_KEYS)
    let id: string | undefined
    let address: string | undefined
    if (Object.hasOwn(node, 'id')) {
      id = this.string(node.id, entry, 'id', 'a node id')
      const problem = schemaProblem(NodeId, id)
      if (problem !== undefined) this.fail(entry, `${JSON.stringify(id)} is not a node id: it ${problem}${rangeHint(id)}`, ['id'])
    }
    if (Object.hasOwn(node, 'address')) {
      address = this.string(node.address, entry, 'address', 'a host name or IP address')
      const problem = addressProblem(address)
      if (problem !== undefined) this.fail(entry, `${JSON.stringify(address)} is not a host name or IP address: it ${problem}${rangeHint(address)}`, ['address'])
    }
    if (id === undefined && address === undefined) this.fail(entry, 'needs an id or an address (or both)')
    if (id === undefined) {
      const problem = schemaProblem(NodeId, address)
      if (problem !== undefined) this.fail(entry, `the address ${JSON.stringify(address)} cannot serve as the node id (it ${problem}); give an id`, ['address'])
    }
    this.reserve(1, entry, 'this node')
    const base = this.merge([...levels, settings], entry, group)
    this.add({ id: id ?? address!, address: address ?? id!, ...base }, entry)
  }

  /** Resolves the levels, most general first; one frozen labels object per call, shared by a range's nodes. */
  private merge(levels: readonly Settings[], entry: Path, group: string | undefined): Base {
    /** The most specific level setting `key`, no more general than `floor`. */
    const levelOf = (key: keyof Settings, floor = 0): number => {
      for (let i = levels.length - 1; i >= floor; i--) if (levels[i]![key] !== undefined) return i
      return -1
    }
    const pick = <K extends keyof Settings>(key: K, floor = 0): Settings[K] => levels[levelOf(key, floor)]?.[key]
    const user = pick('user') ?? this.user
    if (user === undefined) this.fail(entry, 'no user given: set user in defaults, the group or the node', ['user'])
    // A passphrase belongs to the key beside it or above it: a group that names another key (or
    // clears it for the agent) does not inherit the defaults' passphrase.
    const keyLevel = levelOf('identityFile')
    const identityFile = pick('identityFile') ?? undefined
    const passphraseFile = pick('passphraseFile', Math.max(keyLevel, 0)) ?? undefined
    if (passphraseFile !== undefined && identityFile === undefined) {
      this.fail(entry, 'is set, but there is no identityFile for it to unlock', ['passphraseFile'])
    }
    const labels: Record<string, string> = {}
    for (const level of levels) Object.assign(labels, level.labels)
    return {
      port: pick('port') ?? DEFAULT_PORT,
      user,
      region: pick('region') ?? DEFAULT_REGION,
      labels: Object.freeze(labels),
      ...(identityFile === undefined ? {} : { identityFile }),
      ...(passphraseFile === undefined ? {} : { passphraseFile }),
      ...(group === undefined ? {} : { group }),
    }
  }

  private add(node: InventoryNode, entry: Path, item?: string): void {
    const previous = this.seen.get(node.id)
    if (previous !== undefined) {
      const prefix = item === undefined ? '' : `${JSON.stringify(item)}: `
      if (previous === entry) this.fail(entry, `${prefix}yields the node id ${JSON.stringify(node.id)} twice`)
      const line = lineCol(this.text, this.source.locate(previous))?.line
      this.fail(entry, `${prefix}duplicate node id ${JSON.stringify(node.id)}, already at ${formatPath(previous)}${line === undefined ? '' : ` (line ${line})`}`)
    }
    this.seen.set(node.id, entry)
    this.nodes.push(Object.freeze(node))
  }

  private reserve(count: number, entry: Path, what: string): void {
    const total = this.nodes.length + count
    if (total <= MAX_INVENTORY_NODES) return
    this.fail(
      entry,
      count > MAX_INVENTORY_NODES
        ? `${what}, more than the ${MAX_INVENTORY_NODES} nodes an inventory may hold`
        : `${what}, which would bring the inventory to ${total} nodes, more than the ${MAX_INVENTORY_NODES} it may hold`,
    )
  }

  // ---- fields ----

  private settings(map: Mapping, entry: Path, known: readonly string[]): Settings {
    this.checkKeys(map, known, entry)
    const s: Settings = {}
    for (const [key, value] of Object.entries(map)) {
      switch (key) {
        case 'user': {
          const user = this.string(value, entry, key, 'a user name')
          if (!USER.test(user)) {
            this.fail(entry, `${JSON.stringify(user)} is not a user name: it must hold only letters, digits, '_', '.', '@' or '-', not start with '.', '@' or '-', and be at most 64 long`, [key])
          }
          s.user = user
          break
        }
        case 'port':
          if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
            this.fail(entry, `must be an integer from 1 to 65535 (got ${show(value)})`, [key])
          }
          s.port = value
          break
        case 'identityFile':
        case 'passphraseFile':
          s[key] = value === null ? null : this.path(value, entry, key)
          break
        case 'region': {
          const region = this.string(value, entry, key, 'a region name')
          const problem = schemaProblem(Region, region)
          if (problem !== undefined) this.fail(entry, `${JSON.stringify(region)} is not a region: it ${problem}`, [key])
          s.region = region
          break
        }
        case 'labels':
          s.labels = value === null ? {} : this.labels(value, entry)
          break
      }
    }
    return s
  }

  private labels(value: unknown, entry: Path): Record<string, string> {
    const map = this.mapping(value, [...entry, 'labels'], 'a mapping of label names to values, such as { role: web }')
    const labels: Record<string, string> = {}
    for (const [key, v] of Object.entries(map)) {
      const field = ['labels', key]
      const keyProblem = schemaProblem(LabelKey, key)
      if (keyProblem !== undefined) this.fail(entry, `${JSON.stringify(key)} is not a label name: it ${keyProblem}`, field)
      if (key === 'region') this.fail(entry, 'cannot be a label: selectors read region=… from the node\'s region; set region instead', field)
      if (typeof v !== 'string') {
        const quote = typeof v === 'number' || typeof v === 'boolean' ? `; quote it: "${String(v)}"` : ''
        this.fail(entry, `must be a string (got ${show(v)})${quote}`, field)
      }
      const problem = schemaProblem(LabelValue, v)
      if (problem !== undefined) this.fail(entry, `${JSON.stringify(v)} is not a label value: it ${problem}`, field)
      labels[key] = v
    }
    return labels
  }

  /** A key path: `~/` is the home directory, relative paths start at the inventory's directory. */
  private path(value: unknown, entry: Path, key: string): string {
    const text = this.string(value, entry, key, 'a file path')
    if (text === '' || text.includes('\0')) this.fail(entry, `must be a file path (got ${show(text)})`, [key])
    if (text === '~' || text.startsWith('~/')) {
      if (this.home === '') this.fail(entry, `${JSON.stringify(text)}: "~" cannot be expanded: no home directory is known`, [key])
      return resolve(this.home, `.${text.slice(1)}`)
    }
    if (text.startsWith('~')) this.fail(entry, `${JSON.stringify(text)}: only "~/" (your own home) is expanded; write the path in full`, [key])
    return resolve(this.base, text)
  }

  private string(value: unknown, entry: Path, key: string, what: string): string {
    if (typeof value !== 'string') this.fail(entry, `must be ${what} (got ${show(value)})`, [key])
    return value
  }

  private mapping(value: unknown, at: Path, what = 'a mapping', hint = ''): Mapping {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(at, `must be ${what} (got ${show(value)})${hint}`)
    return value as Mapping
  }

  private checkKeys(map: Mapping, known: readonly string[], entry: Path): void {
    for (const key of Object.keys(map)) {
      if (known.includes(key)) continue
      const close = suggest(key, known)
      const hint = close === undefined ? `known keys: ${known.join(', ')}` : `did you mean "${close}"?`
      this.fail(entry, `unknown key ${JSON.stringify(key)} (${hint})`, [key], false)
    }
  }

  /**
   * Throws the `invalid_input` error: `file:line:col: entry: field: detail`. `field` is
   * located and named in `err.field`; `showField: false` leaves it out of the message (when
   * the detail names it itself).
   */
  private fail(entry: Path, detail: string, field: Path = [], showField = true): never {
    const full = [...entry, ...field]
    const at = position(this.text, this.source.locate(full))
    const parts = [formatPath(entry), showField ? formatPath(field) : '', detail].filter((p) => p !== '')
    throw new ApiaryError('invalid_input', `${this.file}${at}: ${parts.join(': ')}`, formatPath(full) || 'inventory')
  }
}

// ---- helpers -----------------------------------------------------------------------------

function own(map: Mapping, key: string): unknown {
  return Object.hasOwn(map, key) ? map[key] : undefined
}

function localUser(): string | undefined {
  try {
    return userInfo().username || undefined
  } catch {
    // No passwd entry for our uid (common in containers): nodes must then name their user.
    return undefined
  }
}

/** `groups.web.hosts[0]`, `labels["k8s.io/zone"]`. */
function formatPath(path: Path): string {
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else if (/^[A-Za-z0-9_][A-Za-z0-9_-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`
    else out += `[${JSON.stringify(seg)}]`
  }
  return out
}

/** A short description of a value for an error message. */
function show(value: unknown): string {
  if (value === null || value === undefined) return 'nothing'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)
  return String(value)
}

/** The first issue's message, e.g. "must hold only letters, …", or undefined when valid. */
function schemaProblem(schema: z.ZodType, value: unknown): string | undefined {
  const parsed = schema.safeParse(value)
  return parsed.success ? undefined : (parsed.error.issues[0]?.message ?? 'is invalid')
}

function addressProblem(address: string): string | undefined {
  if (address === '') return 'must not be empty'
  if (address.length > 253) return 'must be at most 253 characters'
  if (address.includes('@')) return 'holds a "@": give the user in user'
  if (/^[^:]+:\d*$/.test(address)) return 'holds a ":port": give the port in port'
  if (address.startsWith('-')) return 'must not start with "-"'
  if (!ADDRESS.test(address)) return "must hold only letters, digits, '.', '-', '_', ':' or '%'"
  return undefined
}

function rangeHint(text: string): string {
  return text.includes('[') ? ' (ranges such as [1-3] expand in hosts only)' : ''
}

const ALIASES = new Map([
  ['host', 'address'],
  ['hostname', 'address'],
  ['ip', 'address'],
  ['addr', 'address'],
  ['username', 'user'],
  ['login', 'user'],
  ['key', 'identityFile'],
  ['keyfile', 'identityFile'],
  ['identity', 'identityFile'],
  ['privatekey', 'identityFile'],
  ['sshkey', 'identityFile'],
  ['passphrase', 'passphraseFile'],
  ['name', 'id'],
  ['tags', 'labels'],
  ['zone', 'region'],
  ['dc', 'region'],
  ['datacenter', 'region'],
])

/** The known key a misspelt one most likely meant: same letters in another case or style, a common synonym, or a typo away. */
function suggest(key: string, known: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_\s]/g, '')
  const k = norm(key)
  const alias = ALIASES.get(k)
  if (alias !== undefined && known.includes(alias)) return alias
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of known) {
    const d = distance(k, norm(candidate))
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return bestDistance <= (k.length <= 3 ? 1 : 2) ? best : undefined
}

/** Edit distance counting a swap of neighbours as one edit (optimal string alignment). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1)
      d[i]![j] = v
    }
  }
  return d[a.length]![b.length]!
}
