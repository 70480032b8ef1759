import { createHmac, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KnownHosts } from './known-hosts.ts'

/** A fake public key blob of a type: what a server presents. */
const blob = (type: string, seed: string) => {
  const t = Buffer.from(type)
  const len = Buffer.alloc(4)
  len.writeUInt32BE(t.length)
  return Buffer.concat([len, t, Buffer.from(seed.padEnd(32, '.'))])
}
const line = (hosts: string, key: Buffer, marker = '') => `${marker ? `${marker} ` : ''}${hosts} ${key.subarray(4, 4 + key.readUInt32BE(0)).toString()} ${key.toString('base64')}`
const hashed = (name: string) => {
  const salt = randomBytes(20)
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
}

describe('KnownHosts', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apiary-kh-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })
  let n = 0
  const file = async (...lines: string[]) => {
    const path = join(dir, `known_hosts.${++n}`)
    await writeFile(path, lines.join('\n') + '\n')
    return new KnownHosts(path)
  }
  const ed = blob('ssh-ed25519', 'a')
  const ed2 = blob('ssh-ed25519', 'b')
  const rsa = blob('ssh-rsa', 'c')

  it('matches plain names, [host]:port for other ports, and lists, case-insensitively', async () => {
    const kh = await file('# comment', '', line('Web1.example,10.0.0.1', ed), line('[10.0.0.1]:2222', ed2))
    expect((await kh.lookup('web1.EXAMPLE', 22)).check(ed)).toBe('known')
    expect((await kh.lookup('10.0.0.1', 22)).check(ed)).toBe('known')
    expect((await kh.lookup('10.0.0.1', 2222)).check(ed2)).toBe('known')
    expect((await kh.lookup('10.0.0.1', 2222)).check(ed)).toBe('mismatch')
    expect((await kh.lookup('10.0.0.2', 22)).check(ed)).toBe('unknown')
  })

  it('matches hashed names', async () => {
    const kh = await file(line(hashed('[10.0.0.9]:2200'), ed))
    expect((await kh.lookup('10.0.0.9', 2200)).check(ed)).toBe('known')
    expect((await kh.lookup('10.0.0.9', 2200)).check(ed2)).toBe('mismatch')
    expect((await kh.lookup('10.0.0.9', 22)).check(ed)).toBe('unknown')
  })

  it('honours wildcards and negation', async () => {
    const kh = await file(line('*.example,!bad.example', ed))
    expect((await kh.lookup('a.example', 22)).check(ed)).toBe('known')
    expect((await kh.lookup('bad.example', 22)).check(ed)).toBe('unknown')
  })

  it('treats a key of a type not on record as new, and a revoked key as revoked', async () => {
    const kh = await file(line('h', ed), line('h', ed2, '@revoked'))
    expect((await kh.lookup('h', 22)).check(rsa)).toBe('unknown')
    expect((await kh.lookup('h', 22)).check(ed2)).toBe('revoked')
    expect((await kh.lookup('h', 22)).types).toEqual(['ssh-ed25519'])
  })

  it('skips a line whose key is not of its stated type', async () => {
    const kh = await file(`h ssh-rsa ${ed.toString('base64')}`)
    expect((await kh.lookup('h', 22)).check(ed)).toBe('unknown')
  })

  it('records a new key once, and reads the file again when it changes', async () => {
    const kh = new KnownHosts(join(dir, 'fresh'))
    expect((await kh.lookup('new', 2022)).check(ed)).toBe('unknown')
    await Promise.all([kh.add('new', 2022, ed), kh.add('new', 2022, ed)])
    expect(await readFile(join(dir, 'fresh'), 'utf8')).toBe(`${line('[new]:2022', ed)}\n`)
    expect((await kh.lookup('new', 2022)).check(ed)).toBe('known')
    await writeFile(join(dir, 'fresh'), `${line('[new]:2022', ed2)}\n`)
    expect((await kh.lookup('new', 2022)).check(ed)).toBe('mismatch')
  })
})
