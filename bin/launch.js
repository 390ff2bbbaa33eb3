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
  // With a terminal, the child shares this process group, so that it owns the terminal as the
  // command would on its own (top reads keys), and Ctrl-C reaches it directly: passing SIGINT on
  // as well would deliver it twice. Without one (a script, a supervisor), the child gets a group of
  // its own, and every signal sent to this process, or to its group, reaches the child once.
  const terminal = process.stdin.isTTY === true
  const child = spawn(node, [...process.execArgv, script, ...process.argv.slice(2)], { stdio: 'inherit', env: envFor(node), detached: !terminal })
  const forward = (signal) => () => {
    if (!(terminal && signal === 'SIGINT')) child.kill(signal)
  }
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, forward(signal))
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
