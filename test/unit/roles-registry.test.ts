/**
 * The role registry drives run.ts, topic creation, the lag rows and the metric labels
 * (app/roles/registry.ts): every role the config accepts has exactly one entry, and what is derived
 * from the registry covers every topic and input.
 */
import { describe, expect, test } from 'vitest';
import { ROLES, roleInputs, roleNamed, topicsOf } from '../../app/roles/registry.js';
import { ConfigSchema, Role } from '../../src/config.js';

const config = ConfigSchema.parse({ topics: { pairsPartitions: 6, routedPartitions: 3 } });

describe('role registry', () => {
  test('one entry per role the config accepts, http last (it serves the others)', () => {
    expect(ROLES.map((r) => r.name).sort()).toEqual([...Role.options].sort());
    expect(ROLES.at(-1)!.name).toBe('http');
    for (const name of Role.options) expect(roleNamed(name).name).toBe(name);
  });

  test('the topics to create: every input and output once, with its configured partitions', () => {
    const topics = topicsOf(config);
    expect(topics).toEqual(
      expect.arrayContaining([
        { topic: config.topics.pairs, numPartitions: 6 },
        // The shards' changelog: kept whole, so a node taking a partition over can restore its shard.
        { topic: config.topics.routed, numPartitions: 3, configs: { 'retention.ms': '-1', 'retention.bytes': '-1' } },
        { topic: config.topics.dlq, numPartitions: 1 },
      ]),
    );
    expect(new Set(topics.map((t) => t.topic)).size).toBe(topics.length);
    for (const input of roleInputs(config)) expect(topics.map((t) => t.topic)).toContain(input.topic);
  });

  test('lag rows: the router by its committed offsets, the sharder by its durable ones; consumers count outcomes', () => {
    expect(roleInputs(config)).toEqual(
      expect.arrayContaining([
        { stage: 'router', topic: config.topics.pairs, group: config.groups.router, position: 'committed' },
        { stage: 'sharder', topic: config.topics.routed, group: config.groups.sharder, position: 'durable' },
      ]),
    );
    for (const role of ROLES) if (role.input) expect(role.outcomes?.length, role.name).toBeGreaterThan(0);
  });
});
