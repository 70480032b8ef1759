import { describe, expect, it } from 'vitest'
import { serverConfig, type ServerConfigInput } from './server-config.ts'

const input: ServerConfigInput = {
  settings: { host: '127.0.0.1', port: 4222 },
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
    const text = serverConfig({ ...input, settings: { host: '10.0.0.5', port: 14222 } })
    expect(text).toContain('host: "10.0.0.5"\nport: 14222\n')
    expect(text).toContain('max_payload: 8MB\n')
    expect(text).not.toContain('tls')
    expect(text).not.toContain('jetstream')
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
