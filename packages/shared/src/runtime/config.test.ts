import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { execFileSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { defaultStateDir, ensureStateDir, parseDuration, readSecretBytes, readSecretFile, SECRET_FILE_MAX_BYTES, writeSecretFile } from './config.ts'
import { isApiaryError } from '../errors.ts'

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1m30s', 90_000],
    ['1h2m3s4ms', 3_723_004],
    ['1.5s', 1500],
    ['0.25m', 15_000],
    ['90', 90_000],
    ['0.5', 500],
    ['0', 0],
    [' 2s ', 2000],
  ])('reads %j as %i ms', (text, ms) => {
    expect(parseDuration(text, 'timeout')).toBe(ms)
  })

  it.each(['', '   ', 'abc', 'ms', '5x', '5M', '5 m', '-5s', '1m30', '1e3', '5s!', 's5', '1..5s', '1h 30m'])(
    'rejects %j as invalid_input naming the field and the text',
    (text) => {
      let thrown: unknown
      try {
        parseDuration(text, 'rollout.timeout')
      } catch (err) {
        thrown = err
      }
      expect(isApiaryError(thrown, 'invalid_input'), `no invalid_input for ${JSON.stringify(text)}`).toBe(true)
      const err = thrown as { field?: string; message: string }
      expect(err.field).toBe('rollout.timeout')
      expect(err.message).toContain('rollout.timeout')
      expect(err.message).toContain(`"${text}"`)
    },
  )
})

describe('defaultStateDir', () => {
  it('uses an absolute XDG_STATE_HOME, else ~/.local/state', () => {
    expect(defaultStateDir({ XDG_STATE_HOME: '/x/state', HOME: '/home/a' })).toBe('/x/state/apiary')
    expect(defaultStateDir({ XDG_STATE_HOME: 'relative', HOME: '/home/a' })).toBe('/home/a/.local/state/apiary')
    expect(defaultStateDir({ HOME: '/home/a' })).toBe('/home/a/.local/state/apiary')
  })
})

describe('secret files', () => {
  const secret = 's3cr3t-token-value-do-not-print'
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apiary-config-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  /** Writes `text` at `path` with exactly `mode`, whatever the umask. */
  async function fileWithMode(name: string, text: string, mode: number): Promise<string> {
    const path = join(dir, name)
    await writeFile(path, text)
    await chmod(path, mode)
    return path
  }

  async function readError(path: string): Promise<{ code: string; message: string; field?: string }> {
    const err = await readSecretFile(path, 'token').then(
      () => {
        throw new Error(`readSecretFile(${path}) should have refused`)
      },
      (e: unknown) => e,
    )
    expect(isApiaryError(err), String(err)).toBe(true)
    return err as { code: string; message: string; field?: string }
  }

  it('reads a 0600 file, trimmed', async () => {
    const path = await fileWithMode('token', `  ${secret}\n`, 0o600)
    await expect(readSecretFile(path, 'token')).resolves.toBe(secret)
  })

  it('reads a 0400 file', async () => {
    const path = await fileWithMode('token', secret, 0o400)
    await expect(readSecretFile(path, 'token')).resolves.toBe(secret)
  })

  it.each([0o644, 0o640, 0o604, 0o660, 0o700 | 0o007])('refuses mode %o, saying chmod 600 and never the secret', async (mode) => {
    const path = await fileWithMode('token', secret, mode)
    const err = await readError(path)
    expect(err.code).toBe('invalid_input')
    expect(err.field).toBe('token')
    expect(err.message).toContain(`chmod 600 ${path}`)
    expect(err.message).toContain(mode.toString(8))
    expect(err.message).not.toContain(secret)
    expect(JSON.stringify(err)).not.toContain(secret)
  })

  it('says not_found for a missing file', async () => {
    const err = await readError(join(dir, 'missing'))
    expect(err.code).toBe('not_found')
    expect(err.message).toContain('does not exist')
  })

  it('refuses an empty (or blank) file', async () => {
    const path = await fileWithMode('token', ' \n', 0o600)
    const err = await readError(path)
    expect(err.code).toBe('invalid_input')
    expect(err.message).toContain('empty')
  })

  it('refuses a symbolic link to a 0600 file rather than follow it, naming the link and never the secret', async () => {
    const real = await fileWithMode('real-token', secret, 0o600)
    const link = join(dir, 'token')
    await symlink(real, link)
    const err = await readError(link)
    expect(err).toMatchObject({ code: 'invalid_input', field: 'token' })
    expect(err.message).toBe(`token file ${link} is a symbolic link, which is not followed for a secret: give the file itself`)
    expect(JSON.stringify(err)).not.toContain(secret)
  })

  it.runIf(process.geteuid?.() === 0)('refuses a 0600 file owned by another user (here: nobody), saying who owns it', async () => {
    const path = await fileWithMode('token', secret, 0o600)
    await chown(path, 65534, 65534)
    const err = await readError(path)
    expect(err).toMatchObject({ code: 'invalid_input', field: 'token' })
    expect(err.message).toBe(`token file ${path} is owned by uid 65534, not by this user (uid 0); run: chown 0 ${path}, or run as its owner`)
    expect(JSON.stringify(err)).not.toContain(secret)
  })

  it('refuses what is not a regular file (a directory, a FIFO) without hanging on it', async () => {
    const sub = join(dir, 'token.d')
    await mkdir(sub, { mode: 0o700 })
    expect((await readError(sub)).message).toBe(`token file ${sub} is not a regular file`)
    const fifo = join(dir, 'fifo')
    execFileSync('mkfifo', ['-m', '600', fifo])
    expect((await readError(fifo)).message).toBe(`token file ${fifo} is not a regular file`)
  })

  it(`refuses a file larger than ${SECRET_FILE_MAX_BYTES} bytes, and reads one of exactly that size as bytes`, async () => {
    const big = await fileWithMode('token', 'x'.repeat(SECRET_FILE_MAX_BYTES + 1), 0o600)
    expect((await readError(big)).message).toMatch(/is 65537 bytes, more than a secret holds \(at most 65536\)$/)
    const fits = await fileWithMode('key', 'y'.repeat(SECRET_FILE_MAX_BYTES), 0o600)
    expect((await readSecretBytes(fits, 'key')).length).toBe(SECRET_FILE_MAX_BYTES)
  })

  it('writeSecretFile creates the file with mode 0600, creating parent directories', async () => {
    const path = join(dir, 'nested', 'deeper', 'token')
    await writeSecretFile(path, secret)
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    expect(await readFile(path, 'utf8')).toBe(`${secret}\n`)
    // And what it writes, readSecretFile reads back.
    await expect(readSecretFile(path, 'token')).resolves.toBe(secret)
  })

  it('writeSecretFile refuses to overwrite an existing file and leaves it untouched', async () => {
    const path = await fileWithMode('token', 'original', 0o600)
    const err = await writeSecretFile(path, secret).then(
      () => undefined,
      (e: unknown) => e,
    )
    // The queen tells "already there" from other failures by this code (queen/src/token.ts).
    expect((err as NodeJS.ErrnoException | undefined)?.code).toBe('EEXIST')
    expect(await readFile(path, 'utf8')).toBe('original')
    expect((await stat(path)).mode & 0o777).toBe(0o600)
  })
})

describe('ensureStateDir', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apiary-state-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  async function refusal(path: string): Promise<{ code: string; message: string; field?: string }> {
    const err = await ensureStateDir(path, '--state-dir').then(
      () => {
        throw new Error(`ensureStateDir(${path}) should have refused`)
      },
      (e: unknown) => e,
    )
    expect(isApiaryError(err), String(err)).toBe(true)
    return err as { code: string; message: string; field?: string }
  }

  it('makes a missing directory, and its missing parents, mode 0700 whatever the umask', async () => {
    const path = join(dir, 'a', 'b')
    const before = process.umask(0o022)
    try {
      await ensureStateDir(path)
    } finally {
      process.umask(before)
    }
    expect((await stat(path)).mode & 0o777).toBe(0o700)
    // Again: an existing 0700 directory of this user is taken as it is.
    await ensureStateDir(path)
  })

  it.each([0o755, 0o750, 0o701, 0o777])('refuses an existing directory of mode %o, saying the chmod to run', async (mode) => {
    const path = join(dir, 'state')
    await mkdir(path)
    await chmod(path, mode)
    const err = await refusal(path)
    expect(err).toMatchObject({ code: 'invalid_input', field: '--state-dir' })
    expect(err.message).toBe(`state directory ${path} is mode 0${mode.toString(8)}, run: chmod 700 ${path}`)
  })

  it.runIf(process.geteuid?.() === 0)('refuses a directory owned by another user', async () => {
    const path = join(dir, 'state')
    await mkdir(path, { mode: 0o700 })
    await chown(path, 65534, 65534)
    expect((await refusal(path)).message).toBe(`state directory ${path} is owned by uid 65534, not by this user (uid 0): run as its owner, or run: chown 0 ${path}`)
  })

  it('refuses a file where the directory should be', async () => {
    const path = join(dir, 'state')
    await writeFile(path, '')
    expect((await refusal(path)).message).toBe(`state directory ${path} is not a directory`)
  })
})
