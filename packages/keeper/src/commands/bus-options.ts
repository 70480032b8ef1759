import { stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { ApiaryError, type Identity, NodeId, parseOrThrow, Region } from '@apiary/shared'
import type { OptionTable, OptionValues } from '@apiary/shared/runtime'
import { ROLES } from '../bus/layout.ts'
import type { PushFlags } from '../bus/push.ts'
import { type GlobalValues, stateDirOf } from '../cli/context.ts'

/** The flag every keeper bus command takes. */
export const BUS_DIR_OPTIONS = {
  dir: { type: 'string', value: 'DIR', help: 'the bus authority: keys, JWTs, server config, issued credentials (default <state dir>/bus)' },
} as const satisfies OptionTable

/** Who a credential is for: issue and revoke. */
export const IDENTITY_OPTIONS = {
  role: { type: 'string', choices: ROLES, value: 'ROLE', help: 'queen, hive, worker (the agent of one node) or ssh-worker (required)' },
  region: { type: 'string', value: 'R', help: 'region of the hive, worker or ssh-worker' },
  'node-id': { type: 'string', value: 'NODE', help: 'node of the worker (its --node-id)' },
  id: { type: 'string', value: 'ID', help: 'id of the hive or ssh-worker (its --id), or of the queen (default queen)' },
} as const satisfies OptionTable

export function busDirOf(v: OptionValues<typeof BUS_DIR_OPTIONS>, g: GlobalValues, env: NodeJS.ProcessEnv): string {
  return resolve(v.dir ?? `${stateDirOf(g, env)}/bus`)
}

/** The identity the flags name, its ids checked by the shared schemas, naming the flag at fault. */
export function identityFromFlags(v: OptionValues<typeof IDENTITY_OPTIONS>): Identity {
  const role = v.role
  if (role === undefined) throw new ApiaryError('invalid_input', `--role is required: ${ROLES.join(', ')}`, '--role')
  if (role === 'queen') {
    if (v.region !== undefined) throw new ApiaryError('invalid_input', '--region: a queen serves every region and takes none', '--region')
    if (v['node-id'] !== undefined) throw new ApiaryError('invalid_input', '--node-id is for --role worker; the queen takes --id', '--node-id')
    return { role, id: parseOrThrow(NodeId, v.id ?? 'queen', '--id') }
  }
  if (v.region === undefined) throw new ApiaryError('invalid_input', `--region is required for a ${role}`, '--region')
  const region = parseOrThrow(Region, v.region, '--region')
  if (role === 'worker') {
    const node = v['node-id'] ?? v.id
    if (node === undefined) throw new ApiaryError('invalid_input', '--node-id is required for a worker', '--node-id')
    if (v.id !== undefined && v['node-id'] !== undefined && v.id !== v['node-id']) {
      throw new ApiaryError('invalid_input', `--id "${v.id}" and --node-id "${v['node-id']}" differ: a worker's id is its node id, give one`, '--id')
    }
    return { role, region, id: parseOrThrow(NodeId, node, v['node-id'] !== undefined ? '--node-id' : '--id') }
  }
  if (v['node-id'] !== undefined) throw new ApiaryError('invalid_input', `--node-id is for --role worker; a ${role} takes --id`, '--node-id')
  if (v.id === undefined) throw new ApiaryError('invalid_input', `--id is required for a ${role}`, '--id')
  return { role, region, id: parseOrThrow(NodeId, v.id, '--id') }
}

/** How a revoke (or re-issue) reaches the running server: `keeper bus push`, or a reload. */
export function applyHint(configs: readonly string[], dirFlag: string): string {
  return (
    `apply it to a running nats-server with keeper bus push${dirFlag} (it closes only the revoked connections), ` +
    `or reload ${configs.join(', ')}: kill -HUP <nats-server pid> (on 2.9 a reload drops every JWT-authenticated connection for a moment)`
  )
}

/** The flags of a command that pushes the account JWT to nats-server: revoke and push. */
export const PUSH_OPTIONS = {
  server: { type: 'string', value: 'URL', help: 'the nats-server to push the account JWT to, nats://HOST:PORT (default: the address in server.json)' },
  'tls-ca': { type: 'string', value: 'FILE', help: "CA of nats-server's certificate (default: the --tls-ca of server-config, else the system's CAs)" },
  'tls-cert': { type: 'string', value: 'FILE', help: 'client certificate (PEM) keeper presents to a nats-server that demands one (mTLS)' },
  'tls-key': { type: 'string', value: 'FILE', help: 'private key of --tls-cert' },
} as const satisfies OptionTable

const SERVER_URL = /^(?:(?:nats|tls):\/\/)?(?:\[[0-9A-Fa-f:.]+\]|[^\s:/[\]@]+)(?::\d{1,5})?$/

/** An absolute path to a file that exists, naming the flag when it does not. */
export async function existingFile(path: string, flag: string): Promise<string> {
  const abs = resolve(path)
  const st = await stat(abs).catch(() => undefined)
  if (!st?.isFile()) throw new ApiaryError('invalid_input', `${flag}: no file ${abs}`, flag)
  return abs
}

/** The push flags checked (files exist, a certificate with its key), before anything is changed. */
export async function pushFlagsOf(v: OptionValues<typeof PUSH_OPTIONS>): Promise<PushFlags> {
  const out: PushFlags = {}
  if (v.server !== undefined) {
    if (!SERVER_URL.test(v.server)) throw new ApiaryError('invalid_input', `--server: "${v.server}" is not nats://HOST:PORT`, '--server')
    out.server = v.server.includes('://') ? v.server : `nats://${v.server}`
  }
  if ((v['tls-cert'] === undefined) !== (v['tls-key'] === undefined)) {
    const missing = v['tls-cert'] === undefined ? '--tls-cert' : '--tls-key'
    throw new ApiaryError('invalid_input', `${missing} is required with ${missing === '--tls-cert' ? '--tls-key' : '--tls-cert'}`, missing)
  }
  if (v['tls-ca'] !== undefined) out.ca = await existingFile(v['tls-ca'], '--tls-ca')
  if (v['tls-cert'] !== undefined) out.cert = await existingFile(v['tls-cert'], '--tls-cert')
  if (v['tls-key'] !== undefined) out.key = await existingFile(v['tls-key'], '--tls-key')
  return out
}

/** `--out FILE` as an absolute path, refused (naming the flag) when its directory does not exist. */
export async function outPath(file: string): Promise<string> {
  const out = resolve(file)
  if (!(await stat(dirname(out)).then((s) => s.isDirectory(), () => false))) throw new ApiaryError('invalid_input', `--out: no directory ${dirname(out)}`, '--out')
  return out
}
