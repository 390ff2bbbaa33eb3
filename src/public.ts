// What a saga module outside sagactl imports: `import { defineSaga, defineStep, httpParticipant } from 'sagactl/saga'`.
export { awaitEvent, defineSaga, defineStep, defineVersions, parallel, type AwaitStage, type ParallelStage, type ParticipantRoles, type Saga, type SagaStep, type StepAction, type StepCommand, type StepContext, type StepModuleInput, type StepResult } from './saga/define.js'
export type { StepRetryPolicy } from './saga/decide.js'
export { httpParticipant, type HttpParticipantOptions } from './services/http-bridge.js'
