import { describe, expect, it } from 'vitest'
import { ApiaryError } from '@apiary/shared'
import { defaultStoreDir, formatSize, parseHostPort, parseSize, serverConfig, type ServerConfigInput, withJetStream } from './server-config.ts'

const jetstream = { storeDir: '/var/lib/apiary/js', maxStore: 16 * 1024 ** 3, syncAlways: false }
const input: ServerConfigInput = {
  settings: { host: '127.0.0.1', port: 4222, jetstream },
  operatorJwt: 'eyOP.x.y',
  system: { name: 'SYS', publicKey: 'ASYS', jwt: 'eySYS.x.y' },
  accounts: [{ name: 'APIARY', publicKey: 'AAPIARY', jwt: 'eyACC.x.y' }],
}

describe('nats-server config', () => {
  it('trusts the operator and preloads both accounts into a memory resolver', () => {
    const text = serverConfig(input)
    expect(text).toContain('operator: "eyOP.x.y"\n')
    expect(text).toContain('system_account: ASYS\n')
    expect(text).toContain('resolver: MEMORY\n')
    expect(text).toMatch(/resolver_preload: \{\n {2}# APIARY\n {2}AAPIARY: "eyACC\.x\.y"\n {2}# SYS\n {2}ASYS: "eySYS\.x\.y"\n\}\n/)
  })

  it('listens where told, with a max_payload that fits 1 MiB of stdin, and no TLS unless given', () => {
    const text = serverConfig({ ...input, settings: { host: '10.0.0.5', port: 14222, jetstream } })
    expect(text).toContain('host: "10.0.0.5"\nport: 14222\n')
    expect(text).toContain('max_payload: 8MB\n')
    expect(text).not.toContain('tls')
    expect(text).not.toContain('server_name')
    expect(text).not.toContain('cluster')
  })

  it('turns JetStream on with its store and its share of the disk; nats-server 2.9 cannot sync every write, so that is said, not written', () => {
    const text = serverConfig(input)
    expect(text).toMatch(/\njetstream \{\n {2}store_dir: "\/var\/lib\/apiary\/js"\n {2}max_file_store: 17179869184 # 16 GiB\n(?: {2}#.*\n)+\}\n/)
    expect(text).not.toContain('sync_interval: always')
    expect(text).not.toContain('max_memory_store')
    const synced = serverConfig({ ...input, settings: { ...input.settings, jetstream: { ...jetstream, syncAlways: true } } })
    expect(synced).toMatch(/ {2}sync_interval: always\n\}\n/)
  })

  it('names the server and joins its cluster, routes authenticated with the cluster password', () => {
    const cluster = { name: 'apiary', listen: { host: '10.0.0.1', port: 6222 }, routes: [{ host: '10.0.0.2', port: 6222 }, { host: '10.0.0.3', port: 6222 }] }
    const text = serverConfig({ ...input, settings: { ...input.settings, name: 'n1', cluster }, routeSecret: 'abc123' })
    expect(text).toMatch(/^(?:#.*\n)+server_name: "n1"\n/)
    expect(text).toContain(
      [
        'cluster {',
        '  name: "apiary"',
        '  listen: "10.0.0.1:6222"',
        '  authorization { user: "route", password: "abc123" }',
        '  routes: [',
        '    "nats-route://route:abc123@10.0.0.2:6222"',
        '    "nats-route://route:abc123@10.0.0.3:6222"',
        '  ]',
        '}',
      ].join('\n'),
    )
    expect(() => serverConfig({ ...input, settings: { ...input.settings, name: 'n1', cluster } })).toThrow(/route password/)
  })

  it('reads sizes and route addresses as the flags give them', () => {
    expect(parseSize('16G', '--max-store')).toBe(16 * 1024 ** 3)
    expect(parseSize('512MiB', '--max-store')).toBe(512 * 1024 ** 2)
    expect(parseSize('1tb', '--max-store')).toBe(1024 ** 4)
    for (const bad of ['', '16Q', '-1G', '1K', '1.5G']) expect(() => parseSize(bad, '--max-store'), bad).toThrow(ApiaryError)
    expect(() => parseSize('lots', '--max-store')).toThrow('--max-store: "lots" is not a size of at least 1M (such as 512M, 16G, 1T)')
    expect(formatSize(16 * 1024 ** 3)).toBe('16 GiB')
    expect(formatSize(1536 * 1024 ** 2)).toBe('1536 MiB')
    expect(parseHostPort('nats-route://10.0.0.2:7222', '--routes')).toEqual({ host: '10.0.0.2', port: 7222 })
    expect(parseHostPort('nats2.example.com', '--routes')).toEqual({ host: 'nats2.example.com', port: 6222 })
    expect(parseHostPort('[fd00::2]:6222', '--routes')).toEqual({ host: '[fd00::2]', port: 6222 })
    expect(() => parseHostPort('nats://route:pw@10.0.0.2:6222', '--routes')).toThrow(/--routes: .* is not HOST:PORT \(without credentials/)
    expect(() => parseHostPort('10.0.0.2:99999', '--cluster-listen')).toThrow(/--cluster-listen/)
  })

  it('gives a server.json from before JetStream a store beside its config', () => {
    expect(withJetStream({ host: 'h', port: 1, path: '/etc/apiary/nats-server.conf' }).jetstream).toEqual({ storeDir: '/etc/apiary/jetstream', maxStore: 16 * 1024 ** 3, syncAlways: false })
    expect(defaultStoreDir('/b/n2.conf', 'n2')).toBe('/b/jetstream-n2')
  })

  it('adds TLS, and verify (mTLS) only with a CA', () => {
    const tls = serverConfig({ ...input, settings: { ...input.settings, tls: { cert: '/etc/apiary/s.pem', key: '/etc/apiary/s.key' } } })
    expect(tls).toMatch(/tls \{\n {2}cert_file: "\/etc\/apiary\/s\.pem"\n {2}key_file: "\/etc\/apiary\/s\.key"\n\}\n$/)
    expect(tls).not.toContain('verify: true')
    const mtls = serverConfig({ ...input, settings: { ...input.settings, tls: { cert: '/c', key: '/k', ca: '/ca' } } })
    expect(mtls).toMatch(/ {2}ca_file: "\/ca"\n {2}verify: true\n\}\n$/)
  })

  it('quotes paths so a space or a quote cannot break out of the value', () => {
    const text = serverConfig({ ...input, settings: { ...input.settings, tls: { cert: '/a b/"c".pem', key: '/k' } } })
    expect(text).toContain('cert_file: "/a b/\\"c\\".pem"')
  })
})
