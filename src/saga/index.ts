// What a saga module outside sagactl imports (`import { defineSaga, defineStep } from 'sagactl/saga'`).
export { defineSaga, defineStep, type ParticipantRoles, type Saga, type SagaStep, type StepAction, type StepCommand, type StepContext, type StepModuleInput, type StepResult } from './define.js'
export type { StepRetryPolicy } from './decide.js'
