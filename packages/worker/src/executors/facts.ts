import { readFile } from 'node:fs/promises'
import os from 'node:os'
import type { Facts } from '@apiary/shared'

async function readOr(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch {
    return ''
  }
}

/** Typed facts about this machine; values Linux does not offer fall back to Node's view. */
export async function collectFacts(): Promise<Facts> {
  const [osRelease, meminfo] = await Promise.all([readOr('/etc/os-release'), readOr('/proc/meminfo')])
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(osRelease)?.[1]
  const available = /^MemAvailable:\s+(\d+) kB$/m.exec(meminfo)?.[1]
  const cpus = os.cpus()
  const [l1, l5, l15] = os.loadavg()
  return {
    hostname: os.hostname(),
    os: pretty ?? `${os.type()} ${os.release()}`,
    platform: os.platform(),
    kernel: os.release(),
    arch: os.arch(),
    cpus: { count: os.availableParallelism?.() ?? cpus.length, model: cpus[0]?.model.trim() ?? 'unknown' },
    memory: { totalBytes: os.totalmem(), availableBytes: available ? Number(available) * 1024 : os.freemem() },
    uptimeSeconds: Math.round(os.uptime()),
    loadAverage: [l1 ?? 0, l5 ?? 0, l15 ?? 0],
  }
}
