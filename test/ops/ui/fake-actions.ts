import type { ActionRecord, UiActions } from '../../../src/ops/ui/actions.js'

/** Actions a test does not expect to be called: any call fails the test. */
export function noActions(): UiActions {
  const never = (name: string) => () => Promise.reject(new Error(`unexpected action ${name}`))
  return { cancel: never('cancel'), pause: never('pause'), resume: never('resume'), retry: never('retry'), replay: never('replay'), deadLetters: async () => [] }
}

export interface Call {
  action: string
  args: unknown[]
}

/** Actions that record their calls and answer with `answer` (or throw what it throws). */
export function fakeActions(answer: (call: Call) => ActionRecord | Promise<ActionRecord>): { actions: UiActions; calls: Call[] } {
  const calls: Call[] = []
  const act =
    (action: string) =>
    async (...args: unknown[]): Promise<ActionRecord> => {
      const call = { action, args }
      calls.push(call)
      return answer(call)
    }
  return { actions: { cancel: act('cancel'), pause: act('pause'), resume: act('resume'), retry: act('retry'), replay: act('replay'), deadLetters: async () => [] }, calls }
}
