import { readSecretFile } from '@apiary/shared/runtime'
import ssh2, { type AuthMethod, type ParsedKey } from 'ssh2'

const { utils } = ssh2

/** Who logs in, and with which key: the part of an `SshTarget` that auth needs. */
export interface KeyChoice {
  user: string
  keyFile?: string
  passphraseFile?: string
}

export interface KeyRingOptions {
  /** The key for targets that name none. */
  keyFile: string | undefined
  passphraseFile: string | undefined
  /** An ssh-agent socket, tried after the key. */
  agent: string | undefined
}

/**
 * The pool's identities: key files (with passphrases from files) and the agent. Never a
 * password, and the agent is never forwarded.
 *
 * @example await new KeyRing({ keyFile: '/etc/apiary/id_ed25519', passphraseFile: undefined, agent: undefined }).auth({ user: 'deploy' })
 */
export class KeyRing {
  readonly #keys = new Map<string, Promise<ParsedKey>>()

  constructor(private readonly opts: KeyRingOptions) {}

  /**
   * ssh2's auth methods for a target, in order: its key (else the pool's), then the agent.
   * A target's own key takes only its own passphrase: the pool's belongs to the pool's key.
   */
  async auth(target: KeyChoice): Promise<AuthMethod[]> {
    const methods: AuthMethod[] = []
    const keyFile = target.keyFile ?? this.opts.keyFile
    const passFile = target.keyFile !== undefined ? target.passphraseFile : (target.passphraseFile ?? this.opts.passphraseFile)
    if (keyFile !== undefined) {
      methods.push({ type: 'publickey', username: target.user, key: await this.#key(keyFile, passFile) } as AuthMethod)
    }
    if (this.opts.agent) methods.push({ type: 'agent', username: target.user, agent: this.opts.agent } as AuthMethod)
    if (methods.length === 0) throw new Error('no key file and no ssh agent configured')
    return methods
  }

  /** Parses a key once per pool: decrypting one is slow (bcrypt) and blocks the event loop. */
  #key(file: string, passFile: string | undefined): Promise<ParsedKey> {
    const id = `${file}\0${passFile ?? ''}`
    let key = this.#keys.get(id)
    if (!key) {
      key = (async () => {
        const text = await readSecretFile(file, 'ssh key')
        const passphrase = passFile === undefined ? undefined : await readSecretFile(passFile, 'ssh key passphrase')
        const parsed = utils.parseKey(text, passphrase)
        const k = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed
        if (!k || k instanceof Error) throw new Error(`cannot use key ${file}: ${k ? k.message : 'no key in the file'}`)
        if (!k.isPrivateKey()) throw new Error(`${file} holds no private key`)
        return k
      })()
      this.#keys.set(id, key)
      // A broken file may be fixed: do not remember the failure.
      key.catch(() => this.#keys.delete(id))
    }
    return key
  }
}
