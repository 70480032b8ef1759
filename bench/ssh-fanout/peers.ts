import { execFile, spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { BenchNode } from './apiary.ts'
import { machineCpu, reapedChildrenCpuMs } from '../lib/procfs.ts'
import type { Outcome } from './outcome.ts'

const run = promisify(execFile)

export type PeerName = 'pdsh' | 'clush'

/** The Debian package of each peer tool. */
const PACKAGES: Record<PeerName, string> = { pdsh: 'pdsh', clush: 'clustershell' }

async function onPath(cmd: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${cmd}`])
    return true
  } catch {
    return false
  }
}

/**
 * Installs the peers' Debian packages when a tool is missing (`apt-get update` once, then
 * `apt-get install`); returns the tools that can run, and why any cannot.
 */
export async function ensurePeers(progress: (msg: string) => void): Promise<{ tools: PeerName[]; skipped: string[] }> {
  const all: PeerName[] = ['pdsh', 'clush']
  const missing: PeerName[] = []
  for (const t of all) if (!(await onPath(t))) missing.push(t)
  const skipped: string[] = []
  if (missing.length > 0) {
    const pkgs = missing.map((t) => PACKAGES[t])
    if (process.getuid?.() !== 0) {
      skipped.push(`${missing.join(', ')} not installed and not root: apt-get install ${pkgs.join(' ')}`)
    } else {
      progress(`installing ${pkgs.join(', ')} from Debian's packages (apt-get update, then install)`)
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
      try {
        await run('apt-get', ['update'], { env, maxBuffer: 16 << 20 })
        await run('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { env, maxBuffer: 16 << 20 })
      } catch (err) {
        skipped.push(`apt-get install ${pkgs.join(' ')} failed: ${(err as { stderr?: string }).stderr?.trim().split('\n').at(-1) ?? String(err)}`)
      }
    }
  }
  const tools: PeerName[] = []
  for (const t of all) if (await onPath(t)) tools.push(t)
  return { tools, skipped }
}

/** Version lines of the tools and of the OpenSSH client they drive. */
export async function versions(tools: PeerName[]): Promise<string[]> {
  const out: string[] = []
  const first = async (cmd: string, args: string[]) => {
    try {
      const r = await run(cmd, args)
      return `${r.stdout}${r.stderr}`.trim().split('\n')[0] ?? '?'
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string }
      return `${e.stdout ?? ''}${e.stderr ?? ''}`.trim().split('\n')[0] ?? '?'
    }
  }
  out.push(`ssh: ${await first('ssh', ['-V'])}`)
  if (tools.includes('pdsh')) out.push(`pdsh: ${await first('pdsh', ['-V'])}`)
  if (tools.includes('clush')) out.push(`clush: ${await first('clush', ['--version'])}`)
  return out
}

export interface PeerSetup {
  /** The OpenSSH client options both tools pass to every ssh they spawn. */
  sshArgs: string[]
  hostsFile: string
  configFile: string
}

/**
 * Writes what the peers need: a hosts file, and an ssh_config mapping each node's address to
 * its server's port (the harness runs one sshd per 16 addresses, each on its own port; neither
 * pdsh nor clush takes a port per host). Everything else is on the command line, pinned to what
 * apiary does: the harness key, its known_hosts with strict checking, no prompts, and the key
 * exchange apiary negotiated.
 */
export async function writePeerSetup(dir: string, nodes: BenchNode[], o: { user: string; keyFile: string; knownHosts: string; kex: string }): Promise<PeerSetup> {
  const hostsFile = join(dir, 'hosts')
  const configFile = join(dir, 'ssh_config')
  await writeFile(hostsFile, nodes.map((n) => n.host).join('\n') + '\n')
  const byPort = new Map<number, string[]>()
  for (const n of nodes) byPort.set(n.port, [...(byPort.get(n.port) ?? []), n.host])
  const blocks = [...byPort].map(([port, hosts]) => `Host ${hosts.join(' ')}\n  Port ${port}\n`)
  await writeFile(configFile, blocks.join(''))
  const sshArgs = [
    '-F', configFile,
    '-l', o.user,
    '-i', o.keyFile,
    '-o', 'IdentitiesOnly=yes',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${o.knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', `KexAlgorithms=${o.kex}`,
    // apiary neither learns new host keys from the server nor multiplexes through a master.
    '-o', 'UpdateHostKeys=no',
    '-o', 'ControlMaster=no',
    '-o', 'ControlPath=none',
    '-o', 'ConnectTimeout=10',
    '-o', 'LogLevel=ERROR',
  ]
  return { sshArgs, hostsFile, configFile }
}

/** The command line and environment that runs `command` on every node with the tool. */
export function peerCommand(tool: PeerName, setup: PeerSetup, fanout: number, command: string): { argv: string[]; env: NodeJS.ProcessEnv } {
  if (tool === 'pdsh') {
    // pdsh splits PDSH_SSH_ARGS_APPEND on white space: the paths are temp dirs without any.
    return {
      argv: ['pdsh', '-R', 'ssh', '-f', String(fanout), '-w', `^${setup.hostsFile}`, command],
      env: { ...process.env, PDSH_SSH_ARGS_APPEND: setup.sshArgs.join(' ') },
    }
  }
  // clush hands -o to ssh through a shell-like split; none of the options hold spaces.
  return {
    argv: ['clush', '-f', String(fanout), '--hostfile', setup.hostsFile, '-o', setup.sshArgs.join(' '), command],
    env: { ...process.env },
  }
}

/**
 * Runs one peer round and counts what succeeded. Both tools print `NODE: line` for each output
 * line and report a node whose ssh failed or whose command exited non-zero on stderr
 * (`pdsh@HOST: NODE: ssh exited with exit code N`, `clush: NODE: exited with exit code N`).
 * A node counts when the tool ran to the end (exit 0 with no such report, or reports that
 * name nodes) and its report is clean and, when `expect` is given, its output is the expected
 * line. A tool that crashed or timed out counts nothing.
 */
export async function peerRound(
  tool: PeerName,
  setup: PeerSetup,
  nodes: BenchNode[],
  fanout: number,
  command: string,
  expectLine: string | undefined,
  limitMs: number,
  signal: AbortSignal,
): Promise<Outcome> {
  const { argv, env } = peerCommand(tool, setup, fanout, command)
  const cpu0 = reapedChildrenCpuMs()
  const machine0 = machineCpu().busyMs
  const t0 = performance.now()
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s))
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s))
  let timedOut = false
  const onAbort = () => child.kill('SIGKILL')
  signal.addEventListener('abort', onAbort, { once: true })
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL')
  }, limitMs)
  const { code, sig } = await new Promise<{ code: number | null; sig: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, sig) => resolve({ code, sig })),
  )
  const ms = performance.now() - t0
  clearTimeout(timer)
  signal.removeEventListener('abort', onAbort)
  signal.throwIfAborted()
  const cpuMs = reapedChildrenCpuMs() - cpu0
  const machineCpuMs = machineCpu().busyMs - machine0

  const failures = new Map<string, number>()
  const fail = (why: string, n = 1) => failures.set(why, (failures.get(why) ?? 0) + n)
  const hosts = new Set(nodes.map((n) => n.host))
  const failed = new Map<string, string>()
  const report = tool === 'pdsh' ? /^pdsh@[^:]*: ([^:\s]+): (.*)$/ : /^clush: ([^:\s]+): (.*)$/
  const otherLines: string[] = []
  for (const line of stderr.split('\n')) {
    const m = report.exec(line)
    if (m && hosts.has(m[1]!)) {
      if (!failed.has(m[1]!)) failed.set(m[1]!, m[2]!.replace(/\d{2,}/g, 'N'))
    } else if (line.trim() !== '') otherLines.push(line)
  }
  if (timedOut || sig !== null || (code !== 0 && failed.size === 0)) {
    const why = timedOut ? `${tool} still running after ${limitMs} ms` : `${tool} exited ${code ?? sig}: ${(otherLines[0] ?? stderr.trim().split('\n')[0] ?? '').slice(0, 120)}`
    fail(why, nodes.length)
    return { ms, ok: 0, total: nodes.length, cpuMs, machineCpuMs, failures }
  }
  // `NODE: line` on stdout, for checking each node's answer.
  const answers = new Map<string, string>()
  if (expectLine !== undefined) {
    for (const line of stdout.split('\n')) {
      const at = line.indexOf(': ')
      if (at > 0) answers.set(line.slice(0, at), line.slice(at + 2))
    }
  }
  let ok = 0
  for (const n of nodes) {
    const f = failed.get(n.host)
    if (f !== undefined) fail(f)
    else if (expectLine !== undefined && answers.get(n.host) !== expectLine) fail(`unexpected output ${JSON.stringify(answers.get(n.host) ?? '(none)')}`)
    else ok++
  }
  return { ms, ok, total: nodes.length, cpuMs, machineCpuMs, failures }
}
