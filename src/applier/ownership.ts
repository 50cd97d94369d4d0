
/**
 * Who set or removed which label of an issue, kept in the store (src/store/api.ts `OwnershipStore`;
 * docs/architecture.md, "Label ownership").
 *
 * - `rule`: the service added/removed it under a rule of the triage config (bot-owned while present).
 * - `command`: a person asked for it with `/label` (the label is the person's).
 * - `person`: a person changed it in Gitea (learned from a `label_updated` delivery, user = sender).
 * - `unknown`: a change seen only by comparing label sets (who made it is not known).
 *
 * Repo keys are stored lower-cased (Gitea's owner and repo names are case-insensitive).
 */
export type LabelChangeKind = 'rule' | 'command' | 'person' | 'unknown';

export interface LabelChange {
  label: string;
  action: 'added' | 'removed';
  kind: LabelChangeKind;
  /** The bot's login for `rule`, the commenter for `command`, the sender for `person`; null when unknown. */
  user: string | null;
  /** For rule changes: the rule (`labels.kind/bug.title`, `size`) and its evidence. */
  rule?: string;
  evidence?: string;
}

export interface ChangeMeta {
  /** The delivery whose evaluation made or saw the change. */
  delivery: string | null;
  /** `TriageConfig.version` in force. */
  configVersion?: string | null;
}

/** A label the service or a command added and that is still on the issue as far as it knows. */
export interface OwnedLabel {
  label: string;
  kind: 'rule' | 'command';
  user: string | null;
  rule: string | null;
  configVersion: string | null;
  evidence: string | null;
  delivery: string | null;
  /** Epoch ms. */
  addedAt: number;
}

/** One row of the label event log (for the `explain` tool). */
export interface LabelEvent {
  repo: string;
  number: number;
  label: string;
  action: 'added' | 'removed';
  kind: LabelChangeKind;
  user: string | null;
  rule: string | null;
  evidence: string | null;
  configVersion: string | null;
  delivery: string | null;
  /** Epoch ms. */
  at: number;
}

/** The label names as last seen, and the `updated_at` they came from (null: read after a write). */
export interface KnownLabels {
  labels: string[];
  updatedAt: string | null;
  /** Epoch ms when recorded. */
  recordedAt: number;
}

/** The synchronous SQLite implementation lives with the store; re-exported for its existing users. */
export { OwnershipStore, type OwnershipStoreOptions } from '../store/sqlite/ownership-records.js';
