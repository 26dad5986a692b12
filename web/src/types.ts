export type { StatusDocument } from '../../src/domain/schemas/status-document.js';
import type { StatusDocument } from '../../src/domain/schemas/status-document.js';

export type TaskOutputView = NonNullable<StatusDocument['output']>;

/**
 * What the player needs: where the manifests are, and the rest of the output when the task is complete. While
 * processing with EARLY_MANIFEST this is the first package's (the lowest rung and the audio).
 */
export type PlayableOutput = NonNullable<StatusDocument['early_output']> & Partial<TaskOutputView>;

/** The package a task can play now, if any: the finished one, else an early one published while it runs. */
export function playableOutput(doc: StatusDocument): PlayableOutput | undefined {
  if (doc.output) return doc.output;
  if (doc.status === 'processing' && doc.playable && doc.early_output) return doc.early_output;
  return undefined;
}
