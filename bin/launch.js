// Runs this same command on the Node.js that bin/current-node.js finds, from an older Node.
// Plain JavaScript that Node 18 parses.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

import { currentNode, envFor } from './current-node.js'

export async function launch() {
  let node
  try {
    node = currentNode()
  } catch (error) {
    process.stderr.write(`${error.message}\n`)
    process.exit(1)
  }
  const script = fileURLToPath(new URL('./run.js', import.meta.url))
  // The child shares this process group, so that it owns the terminal as the command would on its
  // own (top reads keys). A signal sent to the group reaches it twice, directly and passed on
  // here: sagactl's long-running commands take a repeated stop signal as the same request.
  const child = spawn(node, [...process.execArgv, script, ...process.argv.slice(2)], { stdio: 'inherit', env: envFor(node) })
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal))
  child.on('error', (error) => {
    process.stderr.write(`sagactl: could not start ${node}: ${error.message}\n`)
    process.exit(1)
  })
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal)
      process.kill(process.pid, signal)
      return
    }
    process.exit(code ?? 1)
  })
}
