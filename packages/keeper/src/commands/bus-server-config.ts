import { ApiaryError, parseOrThrow } from '@apiary/shared'
import { DEFAULT_HOST, DEFAULT_PORT, ServerSettings } from '../bus/server-config.ts'
import { defineCommand } from '../cli/command.ts'
import { EXIT } from '../cli/context.ts'
import { BUS_DIR_OPTIONS, busDirOf, existingFile, outPath } from './bus-options.ts'

export const busServerConfig = defineCommand({
  name: 'bus server-config',
  summary: 'write the nats-server config: operator mode, the accounts, listen address, TLS',
  usage: 'keeper bus server-config [--dir DIR] [--host H] [--port P] [--tls-cert F --tls-key F [--tls-ca F]] [--out FILE]',
  options: {
    ...BUS_DIR_OPTIONS,
    host: { type: 'string', default: DEFAULT_HOST, value: 'HOST', help: 'address nats-server listens on' },
    port: { type: 'int', min: 1, max: 65535, default: String(DEFAULT_PORT), value: 'PORT', help: 'port nats-server listens on' },
    'tls-cert': { type: 'string', value: 'FILE', help: 'server certificate (PEM): clients then connect with TLS' },
    'tls-key': { type: 'string', value: 'FILE', help: 'private key of --tls-cert' },
    'tls-ca': { type: 'string', value: 'FILE', help: 'CA of the client certificates: every client must present one (mTLS)' },
    out: { type: 'string', value: 'FILE', help: 'where to write the config, mode 0600; revoke and re-issue rewrite it there (default <dir>/nats-server.conf)' },
  },
  args: 'none',
  async run({ values: v, globals, io }) {
    const dir = busDirOf(v, globals, io.env)
    const host = parseOrThrow(ServerSettings.shape.host, v.host, '--host')
    if (v['tls-cert'] === undefined && (v['tls-key'] !== undefined || v['tls-ca'] !== undefined)) {
      throw new ApiaryError('invalid_input', `--tls-cert is required with ${v['tls-key'] !== undefined ? '--tls-key' : '--tls-ca'}`, '--tls-cert')
    }
    if (v['tls-cert'] !== undefined && v['tls-key'] === undefined) throw new ApiaryError('invalid_input', '--tls-key is required with --tls-cert', '--tls-key')
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
    const s = await writeServerConfig(dir, { host, port: v.port, ...(tls ? { tls } : {}), ...(out ? { path: out } : {}) })
    if (io.format !== 'text') {
      await io.out.line(JSON.stringify(s))
      return EXIT.ok
    }
    const mode = s.tls ? (s.tls.ca ? ', TLS with client certificates (mTLS)' : ', TLS') : ', no TLS'
    await io.out.line(`wrote ${s.path}: listens on ${s.host}:${s.port}${mode}`)
    await io.out.line(`start it with: nats-server -c ${s.path}   (a running one: restart it for a new address or port, kill -HUP <pid> for the rest)`)
    return EXIT.ok
  },
})
