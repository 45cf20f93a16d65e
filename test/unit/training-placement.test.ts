import { describe, expect, it } from 'vitest';
import { inSeedSample } from '../../streams/router.js';
import { seedSource, trainingPlacement } from '../../training/placement.js';

describe('training placement', () => {
  it('trains an expert only where its routed partition (expert mod P) is owned, and follows reassignments', () => {
    let owned = [0, 2];
    const trains = trainingPlacement({ owned: () => owned, leads: () => false, routedPartitions: 4 });
    expect(['expert-0', 'expert-1', 'expert-2', 'expert-3', 'expert-4', 'expert-6'].filter(trains)).toEqual(['expert-0', 'expert-2', 'expert-4', 'expert-6']);
    owned = [1];
    expect(['expert-0', 'expert-1', 'expert-5'].filter(trains)).toEqual(['expert-1', 'expert-5']);
  });

  it('trains the seed only while this node leads', () => {
    let leader = false;
    const trains = trainingPlacement({ owned: () => [0, 1, 2, 3], leads: () => leader, routedPartitions: 4 });
    expect(trains('seed')).toBe(false);
    leader = true;
    expect(trains('seed')).toBe(true);
  });

  it('without a sharder or a controller in this process, trains what it is asked (one state dir shared by role processes)', () => {
    const trains = trainingPlacement({ routedPartitions: 4 });
    expect(['seed', 'expert-0', 'expert-7'].every(trains)).toBe(true);
  });
});

describe('seed source', () => {
  it('uses the cluster-wide sample only where this node owns some but not all routed partitions', () => {
    let owned = [0, 1, 2, 3];
    const from = seedSource({ owned: () => owned, routedPartitions: 4 });
    expect(from()).toBe('shards');
    owned = [1, 3];
    expect(from()).toBe('sample');
    expect(seedSource({ routedPartitions: 4 })()).toBe('shards');
  });
});

describe('seed sample membership', () => {
  it('takes about `rate` of the ids, the same ids every time', () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => `pair-${i}`);
    const taken = ids.filter((id) => inSeedSample(id, 0.05));
    expect(taken.length / ids.length).toBeGreaterThan(0.04);
    expect(taken.length / ids.length).toBeLessThan(0.06);
    expect(ids.filter((id) => inSeedSample(id, 0.05))).toEqual(taken);
    expect(ids.some((id) => inSeedSample(id, 0))).toBe(false);
    expect(ids.every((id) => inSeedSample(id, 1))).toBe(true);
  });
});
