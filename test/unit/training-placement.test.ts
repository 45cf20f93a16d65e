import { describe, expect, it } from 'vitest';
import { trainingPlacement } from '../../training/placement.js';

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
