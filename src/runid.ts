import { createHash, randomBytes } from 'node:crypto';

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';
const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';
export const RUN_ID_LENGTH = 8;

/** A fresh run id: 8 characters [a-z0-9] starting with a letter (a DNS-1035 label on its own). */
export function mintRunId(): string {
  const bytes = randomBytes(RUN_ID_LENGTH);
  let id = LETTERS[bytes[0] % LETTERS.length];
  for (let i = 1; i < RUN_ID_LENGTH; i++) id += ALNUM[bytes[i] % ALNUM.length];
  return id;
}

/**
 * The run id of a run the webhook never saw (fallback mode): derived from its uid so every
 * reconcile, and every operator replica or restart, computes the same one.
 */
export function runIdFromUid(uid: string): string {
  const digest = createHash('sha256').update(uid).digest();
  let id = LETTERS[digest[0] % LETTERS.length];
  for (let i = 1; i < RUN_ID_LENGTH; i++) id += ALNUM[digest[i] % ALNUM.length];
  return id;
}
