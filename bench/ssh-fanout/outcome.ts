/** One tool's run of one command over every node. */
export interface Outcome {
  ms: number
  /** Nodes where the command ran and answered as expected. */
  ok: number
  total: number
  /** Client-side CPU: this process for apiary, the tool and its ssh children for a peer. */
  cpuMs: number
  /** CPU the whole machine spent meanwhile (user + system + softirq): client, sshd, kernel. */
  machineCpuMs: number
  /** Why the other nodes do not count, with how many. */
  failures: Map<string, number>
}
