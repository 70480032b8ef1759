import { resolve } from 'node:path'
import { ApiaryError, parseOrThrow } from '@apiary/shared'
import type { OptionValues } from '@apiary/shared/runtime'
import {
  DEFAULT_HOST,
  DEFAULT_MAX_STORE,
  DEFAULT_PORT,
  formatSize,
  parseHostPort,
  parseSize,
  ServerName,
  ServerSettings,
} from '../bus/server-config.ts'
import type { ServerConfigRequest } from '../bus/store.ts'
import { defineCommand } from '../cli/command.ts'
import { EXIT } from '../cli/context.ts'
import { BUS_DIR_OPTIONS, busDirOf, existingFile, outPath } from './bus-options.ts'

const OPTIONS = {
  ...BUS_DIR_OPTIONS,
  host: { type: 'string', default: DEFAULT_HOST, value: 'HOST', help: 'address nats-server listens on' },
  port: { type: 'int', min: 1, max: 65535, default: String(DEFAULT_PORT), value: 'PORT', help: 'port nats-server listens on' },
  'tls-cert': { type: 'string', value: 'FILE', help: 'server certificate (PEM): clients then connect with TLS' },
  'tls-key': { type: 'string', value: 'FILE', help: 'private key of --tls-cert' },
  'tls-ca': { type: 'string', value: 'FILE', help: 'CA of the client certificates: every client must present one (mTLS)' },
  out: { type: 'string', value: 'FILE', help: 'where to write the config, mode 0600; revoke and re-issue rewrite it there (default <dir>/nats-server.conf, <dir>/nats-server-NAME.conf with --server-name)' },
  'store-dir': { type: 'string', value: 'DIR', help: 'where JetStream keeps the streams (default beside the config: jetstream, or jetstream-NAME with --server-name)' },
  'max-store': { type: 'string', default: formatSize(DEFAULT_MAX_STORE).replace(/ (.)iB$/, '$1'), value: 'SIZE', help: 'the most disk JetStream may use on this server (512M, 16G, 1T); the account may use the sum of its servers\'' },
  'sync-always': { type: 'boolean', help: 'fsync every write before acknowledging it (sync_interval: always; nats-server 2.10 and later: 2.9 refuses to start with it)' },
  'server-name': { type: 'string', value: 'NAME', help: "the server's name (server_name): required in a cluster" },
  'cluster-name': { type: 'string', value: 'NAME', help: 'the JetStream cluster this server is one of (with --server-name, --cluster-listen, --routes)' },
  'cluster-listen': { type: 'string', value: 'HOST:PORT', help: 'where this server listens for the routes of the others' },
  routes: { type: 'string', value: 'HOST:PORT,…', help: "the cluster's servers' --cluster-listen addresses (this one's may be among them)" },
} as const

/** The cluster flags, all or none; a cluster's server has a name. */
function clusterOf(v: OptionValues<typeof OPTIONS>): ServerConfigRequest['cluster'] {
  const name = v['cluster-name']
  if (name === undefined) {
    const stray = v['cluster-listen'] !== undefined ? '--cluster-listen' : v.routes !== undefined ? '--routes' : undefined
    if (stray !== undefined) throw new ApiaryError('invalid_input', `${stray} is for a cluster: give --cluster-name too`, stray)
    return undefined
  }
  if (v['server-name'] === undefined) throw new ApiaryError('invalid_input', "--server-name is required with --cluster-name: a JetStream cluster's servers know each other by name", '--server-name')
  if (v['cluster-listen'] === undefined) throw new ApiaryError('invalid_input', '--cluster-listen is required with --cluster-name', '--cluster-listen')
  if (v.routes === undefined) throw new ApiaryError('invalid_input', '--routes is required with --cluster-name', '--routes')
  const routes = v.routes
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean)
    .map((r) => parseHostPort(r, '--routes'))
  if (routes.length === 0) throw new ApiaryError('invalid_input', '--routes: no route given', '--routes')
  return { name: parseOrThrow(ServerName, name, '--cluster-name'), listen: parseHostPort(v['cluster-listen'], '--cluster-listen'), routes }
}

export const busServerConfig = defineCommand({
  name: 'bus server-config',
  summary: 'write the nats-server config: operator mode, the accounts, listen address, TLS, JetStream, a cluster',
  usage:
    'keeper bus server-config [--dir DIR] [--host H] [--port P] [--tls-cert F --tls-key F [--tls-ca F]] [--out FILE]\n' +
    '       [--store-dir DIR] [--max-store SIZE] [--sync-always] [--server-name NAME]\n' +
    '       [--cluster-name NAME --cluster-listen HOST:PORT --routes HOST:PORT,…]\n' +
    'For a cluster, run it once per server (the same --cluster-name and --routes, its own --server-name):\n' +
    'keeper remembers every server of the cluster, and a revoke rewrites all their configs.',
  options: OPTIONS,
  args: 'none',
  async run({ values: v, globals, io }) {
    const dir = busDirOf(v, globals, io.env)
    const host = parseOrThrow(ServerSettings.shape.host, v.host, '--host')
    if (v['tls-cert'] === undefined && (v['tls-key'] !== undefined || v['tls-ca'] !== undefined)) {
      throw new ApiaryError('invalid_input', `--tls-cert is required with ${v['tls-key'] !== undefined ? '--tls-key' : '--tls-ca'}`, '--tls-cert')
    }
    if (v['tls-cert'] !== undefined && v['tls-key'] === undefined) throw new ApiaryError('invalid_input', '--tls-key is required with --tls-cert', '--tls-key')
    const name = v['server-name'] === undefined ? undefined : parseOrThrow(ServerName, v['server-name'], '--server-name')
    const cluster = clusterOf(v)
    const maxStore = parseSize(v['max-store'], '--max-store')
    const tls =
      v['tls-cert'] !== undefined && v['tls-key'] !== undefined
        ? {
            cert: await existingFile(v['tls-cert'], '--tls-cert'),
            key: await existingFile(v['tls-key'], '--tls-key'),
            ...(v['tls-ca'] !== undefined ? { ca: await existingFile(v['tls-ca'], '--tls-ca') } : {}),
          }
        : undefined
    const out = v.out === undefined ? undefined : await outPath(v.out)
    const { writeServerConfig } = await import('../bus/store.ts')
    const [s, ...others] = await writeServerConfig(dir, {
      host,
      port: v.port,
      ...(tls ? { tls } : {}),
      ...(out ? { path: out } : {}),
      ...(name !== undefined ? { name } : {}),
      ...(cluster ? { cluster } : {}),
      jetstream: { ...(v['store-dir'] !== undefined ? { storeDir: resolve(v['store-dir']) } : {}), maxStore, syncAlways: v['sync-always'] },
    })
    if (s === undefined) throw new Error('no server written')
    if (io.format !== 'text') {
      await io.out.line(JSON.stringify({ ...s, servers: [s, ...others] }))
      return EXIT.ok
    }
    const mode = s.tls ? (s.tls.ca ? ', TLS with client certificates (mTLS)' : ', TLS') : ', no TLS'
    await io.out.line(`wrote ${s.path}: listens on ${s.host}:${s.port}${mode}`)
    if (s.jetstream) await io.out.line(`  JetStream in ${s.jetstream.storeDir}, at most ${formatSize(s.jetstream.maxStore)}${s.jetstream.syncAlways ? ', every write synced' : ''}`)
    if (s.cluster) {
      await io.out.line(`  server ${s.name ?? '?'} of cluster ${s.cluster.name}: routes on ${s.cluster.listen.host}:${s.cluster.listen.port}, to ${s.cluster.routes.map((r) => `${r.host}:${r.port}`).join(', ')}`)
      if (others.length > 0) await io.out.line(`  the cluster's other servers, whose configs were rewritten too: ${others.map((o) => `${o.name ?? '?'} (${o.path})`).join(', ')}`)
    }
    await io.out.line(`start it with: nats-server -c ${s.path}   (a running one: restart it for a new address or port, kill -HUP <pid> for the rest)`)
    return EXIT.ok
  },
})
