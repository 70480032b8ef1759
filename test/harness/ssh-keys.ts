import ssh2 from 'ssh2'

type Options = { passphrase: string; cipher: string; rounds: number }

/**
 * A fresh ed25519 key pair in OpenSSH format that ssh2 can read back. ssh2's generator strips
 * every leading zero byte of the public key, so about one pair in 256 is unreadable
 * (mscdex/ssh2#1513); such a pair is made again.
 *
 * @example const { private: key, public: pub } = sshKeyPair()
 */
export function sshKeyPair(opts?: Options): { private: string; public: string } {
  for (let tries = 0; tries < 32; tries++) {
    const pair = opts === undefined ? ssh2.utils.generateKeyPairSync('ed25519') : ssh2.utils.generateKeyPairSync('ed25519', opts)
    const pub = ssh2.utils.parseKey(pair.public)
    const priv = ssh2.utils.parseKey(pair.private, opts?.passphrase)
    if (!(pub instanceof Error) && !(priv instanceof Error)) return pair
  }
  throw new Error('ssh2 made 32 unreadable ed25519 key pairs in a row')
}
