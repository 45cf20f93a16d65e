/**
 * Reading stored values back. Every value read from LMDB or a state file is parsed with the zod schema
 * next to its store, so a corrupt one stops as a StateError that names it, instead of flowing on as a
 * wrong type and failing somewhere far from the cause.
 */
import type { z } from 'zod';
import { StateError } from '../src/errors.js';

/** `value` as `schema` says; `what` names it in the error (the store's word for it and its key). */
export function parseStored<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const path = issue?.path.map(String).join('.');
  throw new StateError(`corrupt ${what}: ${path ? `${path}: ` : ''}${issue?.message ?? 'invalid'}`);
}

/** An LMDB key as it reads in messages: `["expert",3]`. */
export const keyText = (key: unknown): string => JSON.stringify(key);
