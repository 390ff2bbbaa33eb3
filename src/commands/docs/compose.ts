import { readFileSync } from 'node:fs'

import { Command, Flags } from '@oclif/core'

import { connectionFlags, sagaFrom } from '../../cli/flags.js'
import { checkCompose, composeServices, renderComposeCheck, type ComposeCheck } from '../../ops/compose.js'

export default class DocsCompose extends Command {
  static override summary = "Check that a Compose file runs every role of the saga, or print a service per role."
  static override description = 'With --check (default docker-compose.yml), exits 1 naming each role no service starts, each started role the saga does not have, and each role started twice. Without it, prints one service per role to paste under `services:`.'
  static override examples = ['<%= config.bin %> docs compose --check', '<%= config.bin %> docs compose --saga ./dist/my-saga.js']
  static override enableJsonFlag = true
  static override flags = {
    check: Flags.string({ description: 'the Compose file to check (docker-compose.yml in the repository)' }),
    saga: connectionFlags.saga,
  }

  async run(): Promise<ComposeCheck | { services: string }> {
    const { flags } = await this.parse(DocsCompose)
    const saga = await sagaFrom(flags)
    if (flags.check === undefined) {
      const services = composeServices(saga)
      this.log(services)
      return { services }
    }
    let text: string
    try {
      text = readFileSync(flags.check, 'utf8')
    } catch (error) {
      this.error(`cannot read ${flags.check}: ${(error as Error).message}`, { exit: 2 })
    }
    const result = checkCompose(flags.check, text, saga)
    this.log(renderComposeCheck(result))
    if (!result.ok) process.exitCode = 1
    return result
  }
}
