import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { createMetrics } from '../../app/metrics.js';

/** Metric names a PromQL text refers to (histogram series map back to their histogram). */
function referencedMetrics(text: string): Set<string> {
  const names = text.match(/\b(?:modestream|process|nodejs)_[a-z0-9_]+/g) ?? [];
  return new Set(names.map((n) => n.replace(/_(bucket|sum|count)$/, '')));
}

describe('deploy/ dashboards and alerts', () => {
  const registered = new Set(createMetrics().registry.getMetricsAsArray().map((m) => (m as unknown as { name: string }).name));

  test.each(['deploy/grafana/modestream-dashboard.json', 'deploy/prometheus/alerts.yml'])('%s only queries metrics the service exports', (file) => {
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.json')) JSON.parse(text);
    const referenced = referencedMetrics(text);
    expect(referenced.size).toBeGreaterThan(3);
    expect([...referenced].filter((name) => !registered.has(name))).toEqual([]);
  });
});
