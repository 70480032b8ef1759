import { createHash, createPrivateKey, X509Certificate } from 'node:crypto'
import { unwatchFile, watchFile } from 'node:fs'
import { open } from 'node:fs/promises'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { createSecureContext } from 'node:tls'
import { serve } from '@hono/node-server'
import { ApiaryError, errorMessage, type Logger } from '@apiary/shared'
import { readSecretFile } from '@apiary/shared/runtime'

/** The certificate (chain) and private key the queen serves HTTPS with. */
export interface TlsFiles {
  /** PEM certificate, then any intermediates. */
  certFile: string
  /** PEM private key, a secret file (mode 0600). */
  keyFile: string
  /** How often both files are checked for a change (default 2 s). */
  pollMs?: number
}

export interface ServeOptions {
  fetch: Parameters<typeof serve>[0]['fetch']
  host: string
  /** 0 picks a free port. */
  port: number
  /** HTTPS with this certificate and key; plain HTTP without. */
  tls?: TlsFiles
  log: Logger
}

export interface Served {
  /** `https://host:port` with TLS, else `http://host:port`. */
  url: string
  port: number
  /** Stops listening, ends open connections (SSE streams) and stops watching the TLS files. */
  close(): Promise<void>
}

/** A certificate chain is a few KiB; a file past this is not one. */
const CERT_FILE_MAX_BYTES = 1024 * 1024

interface TlsPair {
  cert: string
  key: string
  /** Of both files' contents: an unchanged pair is not loaded again. */
  digest: string
  fingerprint: string
  validTo: string
}

/**
 * Serves the HTTP app: over HTTPS when given a certificate and key, which are then watched and
 * loaded again when either changes, without a restart and without dropping open connections
 * (new connections get the new pair). A new pair that does not load (unreadable, not PEM, a key
 * that is not the certificate's) is refused with a log line and the last good one kept. At
 * start a bad pair is an error: a queen does not serve on a guess.
 *
 * @example const served = await serveApp({ fetch: app.fetch, host: '127.0.0.1', port: 0, tls: { certFile, keyFile }, log })
 */
export async function serveApp(o: ServeOptions): Promise<Served> {
  const first = o.tls ? await loadTlsPair(o.tls) : undefined
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = first
      ? serve({ fetch: o.fetch, hostname: o.host, port: o.port, createServer: createHttpsServer, serverOptions: { cert: first.cert, key: first.key, minVersion: 'TLSv1.2' } }, () => resolve(s))
      : serve({ fetch: o.fetch, hostname: o.host, port: o.port }, () => resolve(s))
    s.once('error', reject)
  })
  const port = (server.address() as AddressInfo).port
  const url = `${first ? 'https' : 'http'}://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`
  const stopWatching = o.tls && first ? watchTlsPair(o.tls, first, o.log, (pair) => (server as HttpsServer).setSecureContext({ cert: pair.cert, key: pair.key })) : () => undefined
  if (first) o.log.info({ certFile: o.tls!.certFile, fingerprint: first.fingerprint, validTo: first.validTo }, 'serving HTTPS')
  return {
    url,
    port,
    async close() {
      stopWatching()
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        // Open SSE streams would hold close() forever.
        ;(server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.()
      })
    },
  }
}

/**
 * Checks both files every `pollMs` and loads a pair that changed; `use` puts it in service.
 * Loads are one at a time, so a burst of changes (the certificate, then the key) ends on the
 * last. A refused pair is logged once, not on every poll.
 */
function watchTlsPair(files: TlsFiles, first: TlsPair, log: Logger, use: (pair: TlsPair) => void): () => void {
  let current = first.digest
  let refused: string | undefined
  let stopped = false
  let loading: Promise<void> = Promise.resolve()
  const check = async () => {
    if (stopped) return
    let pair: TlsPair
    try {
      pair = await loadTlsPair(files)
    } catch (err) {
      const problem = errorMessage(err)
      if (problem !== refused) log.error({ certFile: files.certFile, keyFile: files.keyFile, problem }, 'refused the new TLS certificate and key; keeping the last good pair')
      refused = problem
      return
    }
    refused = undefined
    if (pair.digest === current || stopped) return
    use(pair)
    current = pair.digest
    log.info({ certFile: files.certFile, fingerprint: pair.fingerprint, validTo: pair.validTo }, 'reloaded the TLS certificate and key')
  }
  const onChange = () => {
    loading = loading.then(check)
  }
  const interval = files.pollMs ?? 2000
  watchFile(files.certFile, { interval, persistent: false }, onChange)
  watchFile(files.keyFile, { interval, persistent: false }, onChange)
  return () => {
    stopped = true
    unwatchFile(files.certFile, onChange)
    unwatchFile(files.keyFile, onChange)
  }
}

/** Reads and checks a certificate and its key: both PEM, the key the certificate's own. */
export async function loadTlsPair(files: TlsFiles): Promise<TlsPair> {
  const cert = await readCertFile(files.certFile)
  const key = `${await readSecretFile(files.keyFile, '--tls-key')}\n`
  let x509: X509Certificate
  try {
    x509 = new X509Certificate(cert)
  } catch (err) {
    throw new ApiaryError('invalid_input', `--tls-cert file ${files.certFile} holds no PEM certificate`, '--tls-cert', { cause: err })
  }
  let matches: boolean
  try {
    matches = x509.checkPrivateKey(createPrivateKey(key))
  } catch (err) {
    // The key's text is never quoted: only that it does not read.
    throw new ApiaryError('invalid_input', `--tls-key file ${files.keyFile} holds no PEM private key`, '--tls-key', { cause: err })
  }
  if (!matches) throw new ApiaryError('invalid_input', `--tls-key file ${files.keyFile} is not the key of the certificate in ${files.certFile}`, '--tls-key')
  try {
    createSecureContext({ cert, key })
  } catch (err) {
    throw new ApiaryError('invalid_input', `--tls-cert ${files.certFile} and --tls-key ${files.keyFile} do not make a TLS context: ${errorMessage(err)}`, '--tls-cert', { cause: err })
  }
  const digest = createHash('sha256').update(cert).update('\0').update(key).digest('hex')
  return { cert, key, digest, fingerprint: x509.fingerprint256, validTo: x509.validTo }
}

async function readCertFile(path: string): Promise<string> {
  let fh
  try {
    fh = await open(path, 'r')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new ApiaryError(code === 'ENOENT' ? 'not_found' : 'invalid_input', `--tls-cert file ${path} ${code === 'ENOENT' ? 'does not exist' : `cannot be read: ${code ?? 'error'}`}`, '--tls-cert', { cause: err })
  }
  try {
    const st = await fh.stat()
    if (!st.isFile() || st.size > CERT_FILE_MAX_BYTES) throw new ApiaryError('invalid_input', `--tls-cert file ${path} is not a certificate file (a regular file of at most ${CERT_FILE_MAX_BYTES} bytes)`, '--tls-cert')
    return await fh.readFile('utf8')
  } finally {
    await fh.close()
  }
}
