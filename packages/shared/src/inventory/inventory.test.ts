import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type ApiaryError, isApiaryError } from '../errors.ts'
import { matchesSelector, parseSelector } from '../schema/targets.ts'
import { type InventoryOptions, loadInventory, MAX_INVENTORY_NODES, parseInventory } from './inventory.ts'

const OPTIONS: InventoryOptions = { home: '/home/op', user: 'op' }

/** YAML written indented inside a test: drops the first line break and the common indent. */
function y(strings: TemplateStringsArray, ...values: unknown[]): string {
  const text = String.raw({ raw: strings }, ...values).replace(/^\n/, '')
  const indent = Math.min(...text.split('\n').filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)![0].length))
  return text
    .split('\n')
    .map((l) => l.slice(indent))
    .join('\n')
}

const parse = (text: string, file = 'inventory.yaml', options = OPTIONS) => parseInventory(text, file, options)

/** The invalid_input error parsing `text` throws. */
function reject(text: string, file = 'inventory.yaml', options = OPTIONS): ApiaryError {
  let thrown: unknown
  try {
    parse(text, file, options)
  } catch (err) {
    thrown = err
  }
  if (!isApiaryError(thrown, 'invalid_input')) throw new Error(`expected invalid_input, got ${String(thrown)}`)
  return thrown
}

const EXAMPLE = y`
  defaults:            # apply to every node unless a group or node overrides
    user: deploy
    port: 22
    identityFile: ~/.ssh/id_ed25519    # ~ expands to $HOME
    region: default
    labels: { env: prod }
  groups:
    web:
      region: eu
      labels: { role: web }
      hosts: [ "web[001-250].eu.example" ]
    db:
      user: postgres
      labels: { role: db }
      nodes:
        - { id: db-1, address: 10.0.0.5, port: 2222, labels: { primary: "true" } }
  nodes:               # ungrouped nodes
    - { id: bastion, address: 192.0.2.10 }
`

describe('parseInventory: the format', () => {
  it('resolves the documented example', () => {
    const inv = parse(EXAMPLE)
    expect(inv.file).toBe('inventory.yaml')
    expect(inv.nodes).toHaveLength(252)
    expect(inv.nodes[0]).toStrictEqual({
      id: 'web001.eu.example',
      address: 'web001.eu.example',
      port: 22,
      user: 'deploy',
      region: 'eu',
      labels: { env: 'prod', role: 'web' },
      identityFile: '/home/op/.ssh/id_ed25519',
      group: 'web',
    })
    expect(inv.nodes[249]!.id).toBe('web250.eu.example')
    expect(inv.nodes[250]).toStrictEqual({
      id: 'db-1',
      address: '10.0.0.5',
      port: 2222,
      user: 'postgres',
      region: 'default',
      labels: { env: 'prod', role: 'db', primary: 'true' },
      identityFile: '/home/op/.ssh/id_ed25519',
      group: 'db',
    })
    expect(inv.nodes[251]).toStrictEqual({
      id: 'bastion',
      address: '192.0.2.10',
      port: 22,
      user: 'deploy',
      region: 'default',
      labels: { env: 'prod' },
      identityFile: '/home/op/.ssh/id_ed25519',
    })
  })

  it('reads the example in its own documentation', async () => {
    const source = await readFile(new URL('./inventory.ts', import.meta.url), 'utf8')
    const block = /```yaml\n([\s\S]*?)\n \* ```/.exec(source)?.[1]
    if (block === undefined) throw new Error('no yaml example in inventory.ts')
    const inv = parse(block.replace(/^ \* ?/gm, ''), '/etc/apiary/inventory.yaml')
    expect(inv.nodes).toHaveLength(250 + 7 + 2 + 2)
    expect(inv.nodes.slice(250, 257).map((n) => n.id)).toEqual(['edge1-n1', 'edge1-n2', 'edge1-n3', 'edge2-n1', 'edge2-n2', 'edge2-n3', 'cache1'])
    expect(inv.nodes.find((n) => n.id === 'db-1')).toStrictEqual({
      id: 'db-1',
      address: '10.0.0.5',
      port: 2222,
      user: 'postgres',
      region: 'default',
      labels: { env: 'prod', role: 'db', primary: 'true' },
      group: 'db',
    })
    expect(inv.nodes.find((n) => n.id === 'jump1')).toMatchObject({ identityFile: '/home/op/.ssh/id_ed25519', passphraseFile: '/home/op/.ssh/id_pass' })
  })

  it('lets the node override its group and the group the defaults, field by field', () => {
    const inv = parse(y`
      defaults: { user: d, port: 1, region: r-d, identityFile: /k/d, passphraseFile: /p/d, labels: { a: d, b: d, c: d } }
      groups:
        g:
          user: g
          port: 2
          region: r-g
          identityFile: /k/g
          labels: { b: g, c: g }
          hosts: [ h1 ]
          nodes:
            - { id: n1, port: 3, labels: { c: n } }
            - { id: n2, user: n, region: r-n, identityFile: /k/n, passphraseFile: /p/n }
    `)
    const [h1, n1, n2] = inv.nodes
    expect(h1).toStrictEqual({
      id: 'h1',
      address: 'h1',
      user: 'g',
      port: 2,
      region: 'r-g',
      identityFile: '/k/g',
      labels: { a: 'd', b: 'g', c: 'g' },
      group: 'g',
    })
    expect(n1).toMatchObject({ user: 'g', port: 3, region: 'r-g', identityFile: '/k/g', labels: { a: 'd', b: 'g', c: 'n' } })
    expect(n2).toMatchObject({ user: 'n', port: 2, region: 'r-n', identityFile: '/k/n', passphraseFile: '/p/n', labels: { a: 'd', b: 'g', c: 'g' } })
  })

  it('defaults port 22, region "default", no labels, no key, and the user it is given', () => {
    expect(parse('hosts: [ a ]').nodes).toStrictEqual([{ id: 'a', address: 'a', port: 22, user: 'op', region: 'default', labels: {} }])
    expect(parse('hosts: [ a ]', 'i.yaml', { ...OPTIONS, user: 'root' }).nodes[0]!.user).toBe('root')
  })

  it('falls back to the local user when none is given, as ssh does', () => {
    const node = parseInventory('hosts: [ a ]', 'i.yaml').nodes[0]!
    expect(node.user).toMatch(/^\S+$/)
  })

  it('takes the id from the address and the address from the id', () => {
    const inv = parse('nodes: [ { address: 10.0.0.5 }, { id: db-1.example }, { id: x, address: 10.0.0.6 } ]')
    expect(inv.nodes.map((n) => [n.id, n.address])).toEqual([
      ['10.0.0.5', '10.0.0.5'],
      ['db-1.example', 'db-1.example'],
      ['x', '10.0.0.6'],
    ])
  })

  it('accepts IPv6 addresses and host names', () => {
    const inv = parse('hosts: [ "2001:db8::1", "2001:db8::[a0-a1]", h ]'.replace('[a0-a1]', '[10-11]'))
    expect(inv.nodes.map((n) => n.address)).toEqual(['2001:db8::1', '2001:db8::10', '2001:db8::11', 'h'])
  })

  it('expands ranges and comma lists in hosts, one string or a list of them', () => {
    const inv = parse(y`
      groups:
        a: { hosts: "r[1-2]-n[1-2],x" }
        b: { hosts: [ "web[1,3,5-6]", "db[01-02]" ] }
    `)
    expect(inv.nodes.map((n) => n.id)).toEqual(['r1-n1', 'r1-n2', 'r2-n1', 'r2-n2', 'x', 'web1', 'web3', 'web5', 'web6', 'db01', 'db02'])
  })

  it('orders nodes as written: each group (hosts, then nodes), then the ungrouped hosts and nodes', () => {
    const inv = parse(y`
      nodes: [ { id: n-top } ]
      hosts: [ h-top ]
      groups:
        b: { nodes: [ { id: n-b } ], hosts: [ h-b ] }
        a: { hosts: [ h-a ] }
    `)
    expect(inv.nodes.map((n) => n.id)).toEqual(['h-b', 'n-b', 'h-a', 'h-top', 'n-top'])
    expect(inv.nodes.map((n) => n.group)).toEqual(['b', 'b', 'a', undefined, undefined])
  })

  it('expands ~/ to the home directory and resolves relative key paths from the file’s directory', () => {
    const inv = parse(
      y`
        nodes:
          - { id: a, identityFile: ~/.ssh/id, passphraseFile: "~" }
          - { id: b, identityFile: keys/id, passphraseFile: ../pass }
          - { id: c, identityFile: /abs/id }
      `,
      '/etc/apiary/inventory.yaml',
    )
    expect(inv.nodes.map((n) => [n.identityFile, n.passphraseFile])).toEqual([
      ['/home/op/.ssh/id', '/home/op'],
      ['/etc/apiary/keys/id', '/etc/pass'],
      ['/abs/id', undefined],
    ])
  })

  it('applies a passphrase to the key beside it or above it, never to a key set below it', () => {
    const inv = parse(y`
      defaults: { identityFile: /k/d, passphraseFile: /p/d }
      groups:
        same: { hosts: [ a ] }
        other-key: { identityFile: /k/g, hosts: [ b ], nodes: [ { id: c, passphraseFile: /p/c } ] }
        agent: { identityFile: null, hosts: [ d ] }
      nodes:
        - { id: e, passphraseFile: /p/e }
    `)
    expect(inv.nodes.map((n) => [n.id, n.identityFile, n.passphraseFile])).toEqual([
      ['a', '/k/d', '/p/d'],
      ['b', '/k/g', undefined],
      ['c', '/k/g', '/p/c'],
      ['d', undefined, undefined],
      ['e', '/k/d', '/p/e'],
    ])
  })

  it('clears an inherited key with null (the node then uses the SSH agent)', () => {
    const inv = parse(y`
      defaults: { identityFile: /k, passphraseFile: /p }
      groups:
        agent: { identityFile: null, passphraseFile: null, hosts: [ a ] }
      nodes:
        - { id: b, identityFile: ~ , passphraseFile: ~ }
        - { id: c }
    `)
    expect(inv.nodes[0]).not.toHaveProperty('identityFile')
    expect(inv.nodes[0]).not.toHaveProperty('passphraseFile')
    expect(inv.nodes[1]).not.toHaveProperty('identityFile')
    expect(inv.nodes[2]).toMatchObject({ identityFile: '/k', passphraseFile: '/p' })
  })

  it.each([
    ['an empty file', ''],
    ['only comments', '# nothing yet\n'],
    ['an empty mapping', '{}'],
    ['empty sections', 'defaults:\ngroups:\nhosts:\nnodes:\n'],
    ['an empty group', 'groups:\n  web:\n'],
    ['empty lists', 'hosts: []\nnodes: []\ngroups: { web: { hosts: [], nodes: [] } }'],
  ])('accepts %s as zero nodes', (_, text) => {
    expect(parse(text).nodes).toEqual([])
  })

  it('accepts YAML anchors and aliases', () => {
    const inv = parse(y`
      groups:
        a: { labels: &common { team: infra }, hosts: [ a1 ] }
        b: { labels: *common, hosts: [ b1 ] }
    `)
    expect(inv.nodes.map((n) => n.labels)).toEqual([{ team: 'infra' }, { team: 'infra' }])
  })

  it('reads a .json file as JSON', () => {
    const inv = parse(JSON.stringify({ defaults: { user: 'u' }, groups: { web: { hosts: ['w[1-2]'] } }, nodes: [{ id: 'b', port: 2222 }] }), 'inv.json')
    expect(inv.nodes.map((n) => [n.id, n.user, n.port, n.group])).toEqual([
      ['w1', 'u', 22, 'web'],
      ['w2', 'u', 22, 'web'],
      ['b', 'u', 2222, undefined],
    ])
    expect(parse('', 'inv.json').nodes).toEqual([])
    expect(parse('{}', 'inv.JSON').nodes).toEqual([])
  })

  it('returns frozen nodes that selectors can pick', () => {
    const inv = parse(EXAMPLE)
    expect(Object.isFrozen(inv.nodes)).toBe(true)
    expect(Object.isFrozen(inv.nodes[0])).toBe(true)
    expect(Object.isFrozen(inv.nodes[0]!.labels)).toBe(true)
    const sel = parseSelector('role=web,region=eu,web00*')
    if (!sel.ok) throw new Error(sel.error)
    expect(inv.nodes.filter((n) => matchesSelector(sel.selector, n)).map((n) => n.id)).toEqual(
      Array.from({ length: 9 }, (_, i) => `web00${i + 1}.eu.example`),
    )
  })

  it('parses a 1000-node range inventory quickly', () => {
    const text = y`
      defaults: { user: deploy, identityFile: ~/.ssh/id }
      groups:
        web: { region: eu, labels: { role: web }, hosts: [ "web[0001-1000].eu.example" ] }
    `
    const started = performance.now()
    const inv = parse(text)
    const ms = performance.now() - started
    expect(inv.nodes).toHaveLength(1000)
    expect(inv.nodes[999]).toMatchObject({ id: 'web1000.eu.example', region: 'eu', user: 'deploy' })
    expect(ms).toBeLessThan(250)
  })

  it('holds exactly MAX_INVENTORY_NODES nodes from ranges', () => {
    const inv = parse(`hosts: [ "n[1-${MAX_INVENTORY_NODES - 1}]", last ]`)
    expect(inv.nodes).toHaveLength(MAX_INVENTORY_NODES)
  })
})

describe('parseInventory: errors name the file, the line, the entry and the field', () => {
  it('rejects a bad range', () => {
    const err = reject(y`
      groups:
        web:
          hosts: [ "web[9-1].eu.example" ]
    `)
    expect(err.message).toBe('inventory.yaml:3:14: groups.web.hosts[0]: "web[9-1].eu.example": range start 9 is greater than end 1')
    expect(err.field).toBe('groups.web.hosts[0]')
  })

  it.each([
    ['web[]', 'range "[]" is empty'],
    ['web[a-c]', 'is not a number or a range of numbers'],
    ['web[1-03]', 'is zero-padded to another width'],
    ['web[1-3', 'never closed'],
  ])('rejects the range %j', (range, message) => {
    const err = reject(`hosts: [ "ok1", "${range}" ]`)
    expect(err.message).toContain(`inventory.yaml:1:17: hosts[1]: "${range}": `)
    expect(err.message).toContain(message)
  })

  it('names a hosts entry given as one string without an index', () => {
    expect(reject('hosts: "a[2-1]"').message).toBe('inventory.yaml:1:1: hosts: "a[2-1]": range start 2 is greater than end 1')
  })

  it('rejects unknown keys at every level, suggesting a close known one', () => {
    expect(reject('defaults:\n  usr: deploy\n').message).toBe('inventory.yaml:2:3: defaults: unknown key "usr" (did you mean "user"?)')
    expect(reject('defaults:\n  usr: deploy\n').field).toBe('defaults.usr')
    expect(reject('group: {}').message).toBe('inventory.yaml:1:1: unknown key "group" (did you mean "groups"?)')
    expect(reject('groups: { web: { host: [ a ] } }').message).toBe('inventory.yaml:1:18: groups.web: unknown key "host" (did you mean "hosts"?)')
    expect(reject('nodes: [ { id: a, prot: 22 } ]').message).toBe('inventory.yaml:1:19: nodes[0]: unknown key "prot" (did you mean "port"?)')
    expect(reject('groups:\n  db:\n    nodes:\n      - { id: a, hostname: b }\n').message).toBe(
      'inventory.yaml:4:18: groups.db.nodes[0]: unknown key "hostname" (did you mean "address"?)',
    )
    expect(reject('defaults: { identity_file: /k }').message).toContain('unknown key "identity_file" (did you mean "identityFile"?)')
    expect(reject('defaults: { IdentityFile: /k }').message).toContain('(did you mean "identityFile"?)')
    expect(reject('defaults: { hosts: [ a ] }').message).toContain('defaults: unknown key "hosts" (known keys: user, port, identityFile, passphraseFile, region, labels)')
    expect(reject('web: { hosts: [ a ] }').message).toBe('inventory.yaml:1:1: unknown key "web" (known keys: defaults, groups, hosts, nodes)')
  })

  it('rejects a duplicate id, naming both places', () => {
    const err = reject(y`
      groups:
        web:
          hosts: [ "web[1-3]" ]
        db:
          nodes:
            - { id: db-1 }
            - { id: web2, address: 10.0.0.5 }
    `)
    expect(err.message).toBe('inventory.yaml:7:9: groups.db.nodes[1]: duplicate node id "web2", already at groups.web.hosts[0] (line 3)')
    expect(err.field).toBe('groups.db.nodes[1]')
    expect(reject('nodes: [ { id: a }, { address: a } ]').message).toBe('inventory.yaml:1:21: nodes[1]: duplicate node id "a", already at nodes[0] (line 1)')
    expect(reject('hosts: [ "a[1-3]", "a[3-4]" ]').message).toBe('inventory.yaml:1:20: hosts[1]: "a[3-4]": duplicate node id "a3", already at hosts[0] (line 1)')
    expect(reject('hosts: [ "a[1-3,2]" ]').message).toBe('inventory.yaml:1:10: hosts[0]: "a[1-3,2]": yields the node id "a2" twice')
  })

  it('rejects a duplicate group or key as invalid YAML, with its line', () => {
    expect(reject('groups:\n  web: {}\n  web: {}\n').message).toBe('inventory.yaml:3:3: invalid YAML: the key "web" appears twice in one mapping')
    expect(reject('nodes:\n  - id: a\n    id: b\n').message).toBe('inventory.yaml:3:5: invalid YAML: the key "id" appears twice in one mapping')
  })

  it.each([
    [0, '0'],
    [65536, '65536'],
    ['"22"', '"22"'],
    [22.5, '22.5'],
    [-1, '-1'],
    ['[22]', 'a list'],
    ['.inf', 'Infinity'],
  ])('rejects the port %s', (port, shown) => {
    const err = reject(`nodes:\n  - { id: a }\n  - { id: b, port: ${port} }\n`)
    expect(err.message).toBe(`inventory.yaml:3:14: nodes[1]: port: must be an integer from 1 to 65535 (got ${shown})`)
    expect(err.field).toBe('nodes[1].port')
  })

  it('rejects a bad port in defaults and groups where it is written', () => {
    expect(reject('defaults: { port: 0 }').message).toBe('inventory.yaml:1:13: defaults: port: must be an integer from 1 to 65535 (got 0)')
    expect(reject('groups: { web: { port: ssh } }').message).toBe('inventory.yaml:1:18: groups.web: port: must be an integer from 1 to 65535 (got "ssh")')
  })

  it('rejects a node with neither id nor address', () => {
    const err = reject('nodes:\n  - { id: a }\n  - { port: 2222, user: x }\n')
    expect(err.message).toBe('inventory.yaml:3:5: nodes[1]: needs an id or an address (or both)')
    expect(err.field).toBe('nodes[1]')
  })

  it('rejects invalid YAML, naming the line', () => {
    expect(reject('nodes:\n  - { id: a\nhosts: []\n').message).toMatch(/^inventory\.yaml:3:\d+: invalid YAML: /)
    expect(reject('a:\n\t- x\n').message).toBe('inventory.yaml:2:1: invalid YAML: tabs are not allowed as indentation')
    expect(reject('hosts: [ a ]\n---\nhosts: [ b ]\n').message).toMatch(/^inventory\.yaml:2:1: invalid YAML: source contains multiple documents/)
    expect(reject('hosts: *nowhere\n').message).toMatch(/^inventory\.yaml: invalid YAML: .*nowhere/)
    expect(reject('hosts: *nowhere\n').field).toBe('inventory')
  })

  it('rejects invalid JSON with the line and column', () => {
    const text = '{\n  "nodes": [\n    { "id": "a" }\n    { "id": "b" }\n  ]\n}\n'
    expect(reject(text, 'inventory.json').message).toBe('inventory.json:4:5: invalid JSON: expected "," or "]" but found "{"')
    expect(reject('{ "hosts": [ "a", ] }', 'inventory.json').message).toBe('inventory.json:1:19: invalid JSON: a comma before "]"')
    expect(reject('{ "hosts": [ "a" }', 'inventory.json').message).toBe('inventory.json:1:18: invalid JSON: expected "," or "]" but found "}"')
    expect(reject('{ "hosts": ', 'inventory.json').message).toBe('inventory.json:1:12: invalid JSON: expected a value but the input ends')
    expect(reject("{ 'hosts': [] }", 'inventory.json').message).toBe('inventory.json:1:3: invalid JSON: expected a double-quoted key but found "\'"')
  })

  it('rejects a key repeated in JSON, which JSON.parse would silently drop', () => {
    const text = '{\n  "groups": {\n    "web": { "hosts": ["a"] },\n    "web": { "hosts": ["b"] }\n  }\n}'
    expect(reject(text, 'inventory.json').message).toBe('inventory.json:4:5: invalid JSON: the key "web" appears twice in one object')
  })

  it('names the line of a field in a JSON inventory', () => {
    const text = JSON.stringify({ groups: { web: { hosts: ['a'], nodes: [{ id: 'b', port: 'ssh' }] } } }, null, 2)
    expect(reject(text, 'inventory.json').message).toBe('inventory.json:10:11: groups.web.nodes[0]: port: must be an integer from 1 to 65535 (got "ssh")')
  })

  it('rejects a top level that is not a mapping', () => {
    expect(reject('- a\n- b\n').message).toBe('inventory.yaml: must be a mapping with any of the keys defaults, groups, hosts, nodes (got a list)')
    expect(reject('[]', 'inventory.json').message).toContain('must be a mapping')
  })

  it('rejects sections of the wrong shape', () => {
    expect(reject('defaults: [ a ]').message).toBe('inventory.yaml:1:1: defaults: must be a mapping (got a list)')
    expect(reject('groups: [ web ]').message).toBe('inventory.yaml:1:1: groups: must be a mapping of group names to groups (got a list)')
    expect(reject('groups: { web: [ a ] }').message).toBe('inventory.yaml:1:11: groups.web: must be a mapping (got a list)')
    expect(reject('hosts: { a: 1 }').message).toBe('inventory.yaml:1:1: hosts: must be a list of host names or ranges, such as [ "web[01-10].example" ] (got a mapping)')
    expect(reject('hosts: [ 12 ]').message).toBe('inventory.yaml:1:10: hosts[0]: must be a host name or range such as "web[01-10].example" (got 12)')
    expect(reject('nodes: { id: a }').message).toBe('inventory.yaml:1:1: nodes: must be a list of nodes, such as [ { id: db-1, address: 10.0.0.5 } ] (got a mapping)')
    expect(reject('nodes: [ bastion ]').message).toBe(
      'inventory.yaml:1:10: nodes[0]: must be a mapping such as { id: db-1, address: 10.0.0.5 } (got "bastion"); to list host names, use hosts',
    )
  })

  it('rejects a bad group name', () => {
    const err = reject('groups:\n  "web eu": { hosts: [ a ] }\n')
    expect(err.message).toBe(
      'inventory.yaml:2:3: groups: "web eu" is not a group name: it must start with a letter and hold only letters, digits, \'_\' or \'-\' (at most 63)',
    )
    expect(err.field).toBe('groups["web eu"]')
    expect(reject('groups: { 1web: {} }').message).toContain('"1web" is not a group name')
  })

  it('rejects bad ids and addresses', () => {
    expect(reject('nodes: [ { id: "-x" } ]').message).toMatch(/^inventory\.yaml:1:12: nodes\[0\]: id: "-x" is not a node id: it must start with a letter or digit/)
    expect(reject('nodes: [ { id: "web[1-3]" } ]').message).toContain('(ranges such as [1-3] expand in hosts only)')
    expect(reject('nodes: [ { id: 5 } ]').message).toBe('inventory.yaml:1:12: nodes[0]: id: must be a node id (got 5)')
    expect(reject('nodes: [ { id: a, address: "web1:2222" } ]').message).toBe(
      'inventory.yaml:1:19: nodes[0]: address: "web1:2222" is not a host name or IP address: it holds a ":port": give the port in port',
    )
    expect(reject('nodes: [ { address: "root@web1" } ]').message).toContain('address: "root@web1" is not a host name or IP address: it holds a "@": give the user in user')
    expect(reject('nodes: [ { address: "fe80::1%eth0" } ]').message).toContain(
      'nodes[0]: address: the address "fe80::1%eth0" cannot serve as the node id (it must start with a letter or digit',
    )
    expect(parse('nodes: [ { id: lo, address: "fe80::1%eth0" } ]').nodes[0]!.address).toBe('fe80::1%eth0')
    expect(reject('hosts: [ "web 1" ]').message).toBe(`inventory.yaml:1:10: hosts[0]: "web 1" is not a host name: it must hold only letters, digits, '.', '-', '_', ':' or '%'`)
    expect(reject('hosts: [ "w[1-2] x" ]').message).toContain('hosts[0]: "w[1-2] x": "w1 x" is not a host name')
    expect(reject('hosts: [ "deploy@web1" ]').message).toContain('"deploy@web1" is not a host name: it holds a "@": give the user in user')
  })

  it('rejects bad users, regions and labels', () => {
    expect(reject('defaults: { user: "-oProxyCommand=x" }').message).toMatch(/^inventory\.yaml:1:13: defaults: user: "-oProxyCommand=x" is not a user name/)
    expect(reject('defaults: { user: 0 }').message).toBe('inventory.yaml:1:13: defaults: user: must be a user name (got 0)')
    expect(reject('groups: { web: { region: "eu west" } }').message).toMatch(/^inventory\.yaml:1:18: groups\.web: region: "eu west" is not a region: it must hold only/)
    expect(reject('nodes: [ { id: a, labels: { primary: true } } ]').message).toBe(
      'inventory.yaml:1:29: nodes[0]: labels.primary: must be a string (got true); quote it: "true"',
    )
    expect(reject('nodes: [ { id: a, labels: { rack: 12 } } ]').message).toContain('labels.rack: must be a string (got 12); quote it: "12"')
    expect(reject('nodes: [ { id: a, labels: { rack: [1] } } ]').message).toContain('labels.rack: must be a string (got a list)')
    expect(reject('nodes: [ { id: a, labels: [ role=web ] } ]').message).toBe(
      'inventory.yaml:1:19: nodes[0].labels: must be a mapping of label names to values, such as { role: web } (got a list)',
    )
    expect(reject('defaults: { labels: { "-x": y } }').message).toContain('defaults: labels["-x"]: "-x" is not a label name: it must hold only')
    expect(reject('defaults: { labels: { region: eu } }').message).toBe(
      "inventory.yaml:1:23: defaults: labels.region: cannot be a label: selectors read region=… from the node's region; set region instead",
    )
    const bad = reject('defaults: { labels: { "k8s.io/zone": "a b" } }')
    expect(bad.message).toContain('defaults: labels["k8s.io/zone"]: "a b" is not a label value')
    expect(bad.field).toBe('defaults.labels["k8s.io/zone"]')
  })

  it('rejects bad key paths', () => {
    expect(reject('defaults: { identityFile: ~bob/.ssh/id }').message).toBe(
      'inventory.yaml:1:13: defaults: identityFile: "~bob/.ssh/id": only "~/" (your own home) is expanded; write the path in full',
    )
    expect(reject('defaults: { identityFile: "" }').message).toBe('inventory.yaml:1:13: defaults: identityFile: must be a file path (got "")')
    expect(reject('defaults: { identityFile: [ a ] }').message).toBe('inventory.yaml:1:13: defaults: identityFile: must be a file path (got a list)')
    expect(reject('hosts: [ a ]\ndefaults: { passphraseFile: /p }').message).toBe(
      'inventory.yaml:1:10: hosts[0]: passphraseFile: is set, but there is no identityFile for it to unlock',
    )
    expect(reject('defaults: { identityFile: /k }\nnodes: [ { id: a, identityFile: null, passphraseFile: /p } ]').message).toBe(
      'inventory.yaml:2:39: nodes[0]: passphraseFile: is set, but there is no identityFile for it to unlock',
    )
    expect(reject('defaults: { identityFile: ~/k }', 'i.yaml', { home: '', user: 'op' }).message).toContain('"~" cannot be expanded: no home directory is known')
  })

  it('rejects a node without a user when there is no fallback', () => {
    const err = reject('nodes: [ { id: a } ]', 'i.yaml', { ...OPTIONS, user: null })
    expect(err.message).toBe('i.yaml:1:10: nodes[0]: user: no user given: set user in defaults, the group or the node')
    expect(parse('defaults: { user: u }\nnodes: [ { id: a } ]', 'i.yaml', { ...OPTIONS, user: null }).nodes[0]!.user).toBe('u')
  })

  it('caps the nodes an inventory may hold, naming the entry', () => {
    expect(reject('groups:\n  big:\n    hosts: [ "n[1-200000]" ]\n').message).toBe(
      `inventory.yaml:3:14: groups.big.hosts[0]: "n[1-200000]" expands to 200000 hosts, more than the ${MAX_INVENTORY_NODES} nodes an inventory may hold`,
    )
    expect(reject('hosts: [ "r[1-1000000]-n[1-1000000]" ]').message).toContain('expands to 1000000000000 hosts')
    expect(reject(`hosts: [ "a[1-60000]", "b[1-60000]" ]`).message).toBe(
      `inventory.yaml:1:24: hosts[1]: "b[1-60000]" expands to 60000 hosts, which would bring the inventory to 120000 nodes, more than the ${MAX_INVENTORY_NODES} it may hold`,
    )
    expect(reject(`hosts: [ "a[1-${MAX_INVENTORY_NODES}]" ]\nnodes: [ { id: x } ]`).message).toBe(
      `inventory.yaml:2:10: nodes[0]: this node, which would bring the inventory to ${MAX_INVENTORY_NODES + 1} nodes, more than the ${MAX_INVENTORY_NODES} it may hold`,
    )
  })

  it('names the file as it was given', () => {
    expect(reject('hosts: [ "a[2-1]" ]', '/etc/apiary/fleet.yml').message).toMatch(/^\/etc\/apiary\/fleet\.yml:1:10: hosts\[0\]: /)
  })
})

describe('loadInventory', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apiary-inventory-'))
  })
  afterEach(async () => {
    await chmod(dir, 0o700).catch(() => {})
    await rm(dir, { recursive: true, force: true })
  })

  async function loadError(path: string): Promise<ApiaryError> {
    const err: unknown = await loadInventory(path, OPTIONS).then(
      () => undefined,
      (e: unknown) => e,
    )
    if (!isApiaryError(err, 'invalid_input')) throw new Error(`expected invalid_input, got ${String(err)}`)
    return err
  }

  it('reads YAML and JSON files, resolving key paths from the file’s directory', async () => {
    await writeFile(join(dir, 'inv.yaml'), 'defaults: { identityFile: keys/id }\nhosts: [ "a[1-2]" ]\n')
    await writeFile(join(dir, 'inv.json'), '\uFEFF{ "nodes": [ { "id": "b" } ] }')
    const yaml = await loadInventory(join(dir, 'inv.yaml'), OPTIONS)
    expect(yaml.file).toBe(join(dir, 'inv.yaml'))
    expect(yaml.nodes.map((n) => [n.id, n.identityFile])).toEqual([
      ['a1', join(dir, 'keys/id')],
      ['a2', join(dir, 'keys/id')],
    ])
    expect((await loadInventory(join(dir, 'inv.json'), OPTIONS)).nodes.map((n) => n.id)).toEqual(['b'])
  })

  it('accepts an empty file as an empty inventory', async () => {
    await writeFile(join(dir, 'empty.yaml'), '')
    expect((await loadInventory(join(dir, 'empty.yaml'), OPTIONS)).nodes).toEqual([])
  })

  it('rejects a missing file', async () => {
    const path = join(dir, 'nope.yaml')
    const err = await loadError(path)
    expect(err.message).toBe(`inventory file ${path} does not exist`)
    expect(err.field).toBe('inventory')
    expect((await loadError(join(dir, 'nope', 'x.yaml'))).message).toContain('does not exist')
  })

  it('rejects a directory', async () => {
    expect((await loadError(dir)).message).toBe(`inventory file ${dir} is a directory`)
  })

  // Root reads any file whatever its mode, so permission errors cannot be provoked as root.
  it.skipIf(process.getuid?.() === 0)('rejects an unreadable file', async () => {
    const path = join(dir, 'secret.yaml')
    await writeFile(path, 'hosts: [ a ]\n')
    await chmod(path, 0o000)
    const err = await loadError(path)
    expect(err.message).toBe(`cannot read inventory file ${path}: permission denied`)
    expect(err.cause).toBeDefined()
  })

  // As above: not reproducible as root.
  it.skipIf(process.getuid?.() === 0)('rejects a file in an unreadable directory', async () => {
    const sub = join(dir, 'locked')
    await mkdir(sub)
    await writeFile(join(sub, 'inv.yaml'), 'hosts: [ a ]\n')
    await chmod(sub, 0o000)
    expect((await loadError(join(sub, 'inv.yaml'))).message).toBe(`cannot read inventory file ${join(sub, 'inv.yaml')}: permission denied`)
    await chmod(sub, 0o700)
  })

  // /proc/self/mem exists only on Linux.
  it.skipIf(process.platform !== 'linux')('rejects a file that fails to read, with the error code', async () => {
    // Reading /proc/self/mem from offset 0 fails with EIO, even for root.
    expect((await loadError('/proc/self/mem')).message).toBe('cannot read inventory file /proc/self/mem: EIO')
  })

  it('rejects a bad file with its path in the message', async () => {
    const path = join(dir, 'bad.yaml')
    await writeFile(path, 'groups:\n  web:\n    hosts: [ "web[9-1]" ]\n')
    expect((await loadError(path)).message).toBe(`${path}:3:14: groups.web.hosts[0]: "web[9-1]": range start 9 is greater than end 1`)
  })
})
