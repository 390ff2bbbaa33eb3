import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')

/**
 * Compiles a saga definition under test/ to JavaScript that `sagactl start` can load through
 * SAGA_DEFINITION_MODULE, as an extension would ship it. Returns the built module's path.
 */
export async function buildDefinition(source: string): Promise<{ module: string; remove(): void }> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-definition-'))
  // Node reads the output as ESM only if a package.json above it says so.
  fs.writeFileSync(path.join(out, 'package.json'), JSON.stringify({ type: 'module' }))
  const args = [TSC, '--outDir', out, '--rootDir', ROOT, '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', '--strict', '--skipLibCheck', path.join(ROOT, source)]
  await promisify(execFile)(process.execPath, args, { cwd: ROOT })
  const module = path.join(out, source.replace(/\.ts$/, '.js'))
  if (!fs.existsSync(module)) throw new Error(`tsc did not write ${module}`)
  return { module, remove: () => fs.rmSync(out, { recursive: true, force: true }) }
}
