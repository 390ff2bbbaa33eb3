// The names a saga gives its roles and topics, as types. No imports: every layer may use them.

/**
 * The participant roles the type checker knows. Each step module adds its own role here by
 * declaration merging (`declare module '…/saga/names.js' { interface ParticipantRoles { shipping: true } }`),
 * so its topic key and role name type-check without an edit anywhere else.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface ParticipantRoles {}
export type ParticipantRole = keyof ParticipantRoles & string

/** One role per process; a saga's participants are its steps' roles (roleNames() in saga/derive.ts lists them). */
export type RoleName = 'api' | 'orchestrator' | 'notifier' | ParticipantRole

/** Each participant's command topic is keyed by its role: inventory → inventoryCommands. */
export type TopicKey = 'orderEvents' | `${ParticipantRole}Commands` | 'dlq' | 'control'
