/**
 * Reservoir sampling, Algorithm R (Vitter 1985): after any number of items, each one seen is in the
 * reservoir with the same probability capacity/seen, which is what the bootstrap needs from a stream
 * of unknown length. Pure: the caller owns the slots and the count.
 */
import type { Rng } from './rng.js';

/**
 * Where the item that arrives after `seen` earlier items goes: its slot index, or -1 to drop it.
 * Draws from `rng` only once the reservoir is full, so a filling reservoir consumes no randomness.
 */
export function reservoirSlot(options: { seen: number; capacity: number; rng: Rng }): number {
  const { seen, capacity, rng } = options;
  if (!(Number.isInteger(seen) && seen >= 0)) throw new RangeError(`seen must be a non-negative integer, got ${seen}`);
  if (!(Number.isInteger(capacity) && capacity >= 0)) throw new RangeError(`capacity must be a non-negative integer, got ${capacity}`);
  if (seen < capacity) return seen;
  const j = rng.nextInt(seen + 1);
  return j < capacity ? j : -1;
}
