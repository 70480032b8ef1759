import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

/** A certificate and its key (mode 0600), in PEM files. */
export interface CertPair {
  cert: string
  key: string
}

/** A private CA made with `openssl`, which issues certificates in its directory. */
export interface TestCa {
  /** The CA's certificate (what a client trusts). */
  ca: string
  /** A server certificate for 127.0.0.1, ::1 and localhost, named `name` in the CA's directory. */
  server(name: string): Promise<CertPair>
}

/**
 * Makes a CA named `name` in `dir` (files `<name>-ca.pem`, `<name>-ca.key`). Two CAs of one
 * directory are strangers: a certificate of one is refused by a client that trusts the other.
 * @example const ca = await makeTestCa(dir, 'good'); const { cert, key } = await ca.server('queen')
 */
export async function makeTestCa(dir: string, name: string): Promise<TestCa> {
  const f = (file: string) => join(dir, file)
  const ca = f(`${name}-ca.pem`)
  const caKey = f(`${name}-ca.key`)
  await run('openssl', ['req', '-x509', ...EC, '-keyout', caKey, '-out', ca, '-days', '2', '-subj', `/CN=apiary test CA ${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  await chmod(caKey, 0o600)
  return {
    ca,
    async server(leaf) {
      const cert = f(`${leaf}.pem`)
      const key = f(`${leaf}.key`)
      await writeFile(f(`${leaf}.ext`), 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
      await run('openssl', ['req', ...EC, '-keyout', key, '-out', f(`${leaf}.csr`), '-subj', `/CN=${leaf}`])
      await run('openssl', ['x509', '-req', '-in', f(`${leaf}.csr`), '-CA', ca, '-CAkey', caKey, '-set_serial', `0x${randomBytes(8).toString('hex')}`,
        '-days', '2', '-out', cert, '-extfile', f(`${leaf}.ext`)])
      await chmod(key, 0o600)
      return { cert, key }
    },
  }
}

/** The SHA-256 fingerprint of a PEM certificate file, as node:tls reports `fingerprint256`. */
export async function fingerprint(certFile: string): Promise<string> {
  const { stdout } = await run('openssl', ['x509', '-in', certFile, '-noout', '-fingerprint', '-sha256'])
  return stdout.trim().replace(/^.*=/, '')
}
