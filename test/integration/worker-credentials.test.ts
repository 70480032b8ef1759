import { execFile } from 'node:child_process'
import { chmod, chown, copyFile, mkdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Ack, type Bus, generateSigningKey, type Identity, subjects, type WireEvent } from '@apiary/shared'
import { silentLogger } from '@apiary/shared/runtime'
import { createNatsBus } from '@apiary/shared/nats'
import { journalDir } from '@apiary/worker'
import { TEST_CONFIG } from '../conformance/durable-suite.ts'
import { type Proc, ROOT, runBin, type SecureBus, startBin, startSecureBus, type TempDir, tempDir, testSigner } from '../harness/index.ts'
import { signedTask } from './signed-task.ts'

const QUEEN: Identity = { role: 'queen', id: 'queen' }
const HIVE: Identity = { role: 'hive', region: 'eu', id: 'hive-eu-1' }
const PLAIN: Identity = { role: 'worker', region: 'eu', id: 'cred-1' }
const SWITCHED: Identity = { role: 'worker', region: 'eu', id: 'cred-2' }
const NOBODY = 65534

/** The secret lines of a `.creds` file: its JWT and its nkey seed (not the dashes around them). */
async function credSecrets(file: string): Promise<string[]> {
  const lines = (await readFile(file, 'utf8')).split('\n').map((l) => l.trim())
  const secrets = lines.filter((l) => l !== '' && !l.startsWith('-') && !l.startsWith('*') && !/\s/.test(l))
  expect(secrets.some((s) => s.startsWith('SU')), 'the creds file holds a user seed').toBe(true)
  return secrets
}

/**
 * Real worker processes on an authenticated bus, their credentials in files: a command's
 * environment, and what it can read of its worker's process, hold no secret; with --run-as a
 * command runs as that user and cannot read the worker's credential file or state.
 */
describe('a command cannot read its worker’s credentials', () => {
  let dir: TempDir
  /** World-writable: where commands (as any user) leave what they saw. */
  let out: TempDir
  let nats: SecureBus
  let queen: Bus
  let hive: Bus
  const workers: Proc[] = []

  beforeAll(async () => {
    dir = await tempDir('worker-creds')
    out = await tempDir('worker-creds-out')
    await chmod(out.path, 0o777)
    nats = await startSecureBus(dir.path, [QUEEN, HIVE, PLAIN, SWITCHED])
    queen = await createNatsBus({ url: nats.url, name: 'test-queen', log: silentLogger(), identity: QUEEN, credsFile: nats.creds(QUEEN) })
    await queen.durable.ensure(TEST_CONFIG)
    hive = await createNatsBus({ url: nats.url, name: 'test-hive', log: silentLogger(), identity: HIVE, credsFile: nats.creds(HIVE) })
  })
  afterAll(async () => {
    for (const w of workers) await w.stop()
    await hive?.close()
    await queen?.close()
    await nats?.stop()
    await out?.remove()
    await dir?.remove()
  })

  const startWorker = async (who: Identity, credsFile: string, stateDir: string, extra: string[] = []) => {
    const w = startBin('apiary-worker', ['--nats', nats.url, '--nats-creds', credsFile, '--queen-key', testSigner.publicKey, '--region', 'eu', '--node-id', who.id, '--state-dir', stateDir, '--heartbeat', '200ms', ...extra])
    workers.push(w)
    await w.waitFor(/worker ready/)
  }
  /** Runs `command` with /bin/sh on `node` as a hive would, and resolves with how it ended. */
  const run = async (jobId: string, node: string, command: string): Promise<WireEvent> => {
    const ended = new Promise<WireEvent>((resolve) => {
      const sub = hive.subscribe(subjects.nodeEvents('eu', node, jobId), (m) => {
        const ev = m.data as WireEvent
        if (ev.kind !== 'node.finished') return
        sub.unsubscribe()
        resolve(ev)
      })
    })
    await hive.flush()
    const ack = (await hive.request(subjects.task('eu', node), signedTask(jobId, node, { type: 'exec', shell: true, command }), { timeoutMs: 10_000 })) as Ack
    expect(ack).toEqual({ accepted: true, by: node })
    return ended
  }
  /** A fresh directory any user may write, for what one command saw. */
  const outDir = async (name: string) => {
    const d = join(out.path, name)
    await mkdir(d)
    await chmod(d, 0o777)
    return d
  }
  let o = ''
  const seen = (name: string) => readFile(join(o, name), 'utf8')

  it('holds no secret in a command’s environment, nor in the worker’s argv and environment', async () => {
    const creds = nats.creds(PLAIN)
    await startWorker(PLAIN, creds, join(dir.path, 'state-plain'))
    o = await outDir('plain')
    const ended = await run('jcreds0001', PLAIN.id, `env > ${o}/env; tr '\\0' '\\n' < /proc/$PPID/cmdline > ${o}/cmdline; tr '\\0' '\\n' < /proc/$PPID/environ > ${o}/environ`)
    expect(ended).toMatchObject({ state: 'ok', exitCode: 0 })
    const [env, cmdline, environ] = [await seen('env'), await seen('cmdline'), await seen('environ')]
    // What was read is the worker's: its argv names the credential file, by path only.
    expect(cmdline.split('\n')).toEqual(expect.arrayContaining(['--nats-creds', creds]))
    expect(env).toContain(`APIARY_NODE_ID=${PLAIN.id}`)
    expect(env.split('\n').filter((l) => l.startsWith('APIARY_')).map((l) => l.replace(/=.*/, '')).sort()).toEqual(['APIARY_JOB_ID', 'APIARY_NODE_ID'])
    for (const secret of await credSecrets(creds)) {
      for (const [what, text] of Object.entries({ env, cmdline, environ })) expect(text.includes(secret), `a credential in the command's view of ${what}`).toBe(false)
    }
  })

  it('--run-as nobody: the command runs as nobody, with its HOME and USER, and cannot read the credential file or the state', async () => {
    // A directory anyone may enter, so that what refuses is the file's own mode.
    const open = join(dir.path, 'open')
    await mkdir(open)
    await chmod(open, 0o755)
    await chmod(dir.path, 0o755)
    const creds = join(open, 'worker.creds')
    await copyFile(nats.creds(SWITCHED), creds)
    await chmod(creds, 0o600)
    const stateDir = join(open, 'state')
    await startWorker(SWITCHED, creds, stateDir, ['--run-as', 'nobody'])
    o = await outDir('switched')
    const key = join(journalDir(stateDir, 'worker', SWITCHED.id), 'dedupe.key')
    const ended = await run(
      'jrunas0001',
      SWITCHED.id,
      `id -u > ${o}/uid; id -G > ${o}/groups; echo "$HOME $USER $LOGNAME" > ${o}/who; pwd > ${o}/pwd;` +
        ` cat ${creds} > ${o}/creds 2>&1; ls ${stateDir} > ${o}/ls 2>&1; cat ${key} > ${o}/key 2>&1; cat /proc/$PPID/environ > ${o}/environ 2>&1; true`,
    )
    expect(ended).toMatchObject({ state: 'ok', exitCode: 0 })
    expect((await seen('uid')).trim()).toBe(String(NOBODY))
    // The user's primary group alone: every supplementary group of the worker is dropped.
    expect((await seen('groups')).trim()).toBe(String(NOBODY))
    expect((await seen('who')).trim()).toBe('/nonexistent nobody nobody')
    expect((await seen('pwd')).trim()).toBe('/')
    expect(await seen('creds')).toBe(`cat: ${creds}: Permission denied\n`)
    expect(await seen('ls')).toMatch(/Permission denied/)
    expect(await seen('key')).toMatch(/Permission denied/)
    expect(await seen('environ')).toMatch(/Permission denied/)
    // And the worker kept them its own.
    const mode = async (p: string) => (await stat(p)).mode & 0o777
    expect(await mode(stateDir)).toBe(0o700)
    expect(await mode(key)).toBe(0o600)
  })
})

describe('apiary-worker --run-as and its state directory, at start', () => {
  let dir: TempDir
  const key = generateSigningKey().publicKey
  beforeAll(async () => {
    dir = await tempDir('run-as-start')
  })
  afterAll(async () => {
    await dir?.remove()
  })
  /** The one-line reason a program that failed to start gives on stderr, among its JSON log lines. */
  const lastLine = (stderr: string) => stderr.split('\n').find((l) => l.startsWith('apiary-worker: '))
  const worker = (args: string[]) => runBin('apiary-worker', ['--nats', 'nats://127.0.0.1:1', '--insecure-bus', '--queen-key', key, '--node-id', 'w1', ...args], { APIARY_RUN_AS: '', APIARY_STATE_DIR: '' })

  it('refuses a user that does not exist, before it meets the bus', async () => {
    const r = await worker(['--state-dir', join(dir.path, 's1'), '--run-as', 'no-such-user-here'])
    expect(r.code).toBe(2)
    expect(lastLine(r.stderr)).toBe('apiary-worker: --run-as no-such-user-here: no such user in /etc/passwd')
  })

  it('refuses --run-as where it cannot switch users (not root, no CAP_SETUID)', async () => {
    const stateDir = join(dir.path, 's2')
    await mkdir(stateDir, { mode: 0o700 })
    await chown(stateDir, NOBODY, NOBODY)
    await chmod(dir.path, 0o755)
    // The worker itself as nobody, asked to run commands as root.
    const r = await promisify(execFile)(process.execPath, [`${ROOT}packages/worker/bin/apiary-worker.mjs`, '--nats', 'nats://127.0.0.1:1', '--insecure-bus', '--queen-key', key, '--node-id', 'w1', '--state-dir', stateDir, '--run-as', 'root'], {
      uid: NOBODY,
      gid: NOBODY,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    )
    expect(r.code).toBe(2)
    expect(lastLine(r.stderr)).toBe(`apiary-worker: --run-as root: this worker (uid ${NOBODY}) cannot run commands as another user: it must run as root, or hold CAP_SETUID and CAP_SETGID`)
  })

  it('refuses a state directory others may enter, or that another user owns', async () => {
    const loose = join(dir.path, 'loose')
    await mkdir(loose)
    await chmod(loose, 0o755)
    const r = await worker(['--state-dir', loose])
    expect(r.code).toBe(2)
    expect(lastLine(r.stderr)).toBe(`apiary-worker: state directory ${loose} is mode 0755, run: chmod 700 ${loose}`)
    const theirs = join(dir.path, 'theirs')
    await mkdir(theirs, { mode: 0o700 })
    await chown(theirs, NOBODY, NOBODY)
    const t = await worker(['--state-dir', theirs])
    expect(t.code).toBe(2)
    expect(lastLine(t.stderr)).toBe(`apiary-worker: state directory ${theirs} is owned by uid ${NOBODY}, not by this user (uid 0): run as its owner, or run: chown 0 ${theirs}`)
  })
})
