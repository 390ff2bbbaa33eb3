/**
 * Calls `stop` on the first SIGINT or SIGTERM, once. Later ones are ignored, not left to their
 * default action: a stop signal often arrives twice (a terminal's Ctrl-C reaches the whole process
 * group, and a wrapper such as bin/launch.js or a script's trap passes it on as well), and the
 * default action would end the process before it has stopped what it started.
 */
export function onStopSignal(stop: (signal: NodeJS.Signals) => void): void {
  let stopping = false
  const once = (signal: NodeJS.Signals): void => {
    if (stopping) return
    stopping = true
    stop(signal)
  }
  process.on('SIGINT', once)
  process.on('SIGTERM', once)
}
