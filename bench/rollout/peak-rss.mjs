// Preloaded into the keeper process by the rollout benchmark (node --import): writes the
// process's exact peak RSS (kB) to $BENCH_PEAK_RSS_FILE when it exits, however it exits.
import { writeFileSync } from 'node:fs'

const file = process.env.BENCH_PEAK_RSS_FILE
if (file) {
  process.on('exit', () => {
    try {
      writeFileSync(file, `${process.resourceUsage().maxRSS}\n`)
    } catch {
      // The benchmark falls back to its own samples of VmHWM.
    }
  })
}
