import { stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { ApiaryError, type Identity, NodeId, parseOrThrow, Region } from '@apiary/shared'
import type { OptionTable, OptionValues } from '@apiary/shared/runtime'
import { ROLES } from '../bus/layout.ts'
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

/** What an operator does once the account JWT changed. */
export function reloadHint(config: string): string {
  return `nats-server must reload ${config} for this to take effect: kill -HUP <nats-server pid>, or nats-server --signal reload[=PID]`
}

/** `--out FILE` as an absolute path, refused (naming the flag) when its directory does not exist. */
export async function outPath(file: string): Promise<string> {
  const out = resolve(file)
  if (!(await stat(dirname(out)).then((s) => s.isDirectory(), () => false))) throw new ApiaryError('invalid_input', `--out: no directory ${dirname(out)}`, '--out')
  return out
}
