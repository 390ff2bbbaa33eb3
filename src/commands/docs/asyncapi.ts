import { writeFileSync } from 'node:fs'

import { Command, Flags } from '@oclif/core'

import { connectionFlags, sagaFrom } from '../../cli/flags.js'
import { asyncApiYaml } from '../../ops/asyncapi.js'

export default class DocsAsyncapi extends Command {
  static override summary = 'Print the AsyncAPI 3 document of the topics and messages, or write it to a file.'
  static override description = 'Built from the topic table, the envelope, the order schema and the saga definition (the order saga, or --saga); docs/asyncapi.yaml is the order saga’s.'
  static override examples = ['<%= config.bin %> docs asyncapi', '<%= config.bin %> docs asyncapi --out docs/asyncapi.yaml']
  static override flags = { out: Flags.string({ char: 'o', description: 'write the document to this file instead of standard output' }), saga: connectionFlags.saga }

  async run(): Promise<void> {
    const { flags } = await this.parse(DocsAsyncapi)
    const yaml = asyncApiYaml(this.config.version, await sagaFrom(flags))
    if (flags.out) writeFileSync(flags.out, yaml)
    else process.stdout.write(yaml)
  }
}
