/**
 * The cluster deployments (deploy/docker-compose.cluster.yml, deploy/kubernetes/modestream.yaml) cannot
 * run on the CI machine (no Docker, no Kubernetes); what can be checked here is that every modestream
 * setting they carry is one the config schema accepts, and that their Kafka settings agree with each other.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { envLayer, resolveConfig } from '../../src/config.js';

/** YAML -> JSON through Python's PyYAML (the CI machine has python3; no YAML library in our dependencies). */
function yamlDocuments(file: string): any[] {
  const script = 'import json,sys,yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))';
  return JSON.parse(execFileSync('python3', ['-c', script, file], { encoding: 'utf8' }));
}

describe('cluster deployments', () => {
  it('compose: three brokers in one KRaft quorum with RF 3 / min ISR 2, three nodes with valid settings', () => {
    const [compose] = yamlDocuments('deploy/docker-compose.cluster.yml');
    const services = compose.services as Record<string, { environment: Record<string, string | number> }>;
    const brokers = Object.keys(services).filter((s) => s.startsWith('kafka-'));
    const nodes = Object.keys(services).filter((s) => s.startsWith('modestream-'));
    expect(brokers).toHaveLength(3);
    expect(nodes).toHaveLength(3);
    const ids = brokers.map((b) => services[b]!.environment.KAFKA_NODE_ID);
    expect(new Set(ids).size).toBe(3);
    for (const b of brokers) {
      const env = services[b]!.environment;
      expect(env.KAFKA_CONTROLLER_QUORUM_VOTERS).toBe('1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093');
      expect(env.KAFKA_DEFAULT_REPLICATION_FACTOR).toBe(3);
      expect(env.KAFKA_MIN_INSYNC_REPLICAS).toBe(2);
    }
    const nodeIds = nodes.map((n) => {
      const config = resolveConfig([envLayer(services[n]!.environment as Record<string, string>)]);
      expect(config.kafka.brokers).toEqual(['kafka-1:19092', 'kafka-2:19092', 'kafka-3:19092']);
      expect(config.topics.replicationFactor).toBe(3);
      return config.node.id;
    });
    expect(new Set(nodeIds).size).toBe(3);
  });

  it('kubernetes: the ConfigMap is a valid config, replicas > 1, node id from the pod name, readiness from /readyz', () => {
    const docs = yamlDocuments('deploy/kubernetes/modestream.yaml');
    const configMap = docs.find((d) => d.kind === 'ConfigMap');
    const config = resolveConfig([{ origin: 'ConfigMap', values: JSON.parse(configMap.data['modestream.config.json']) }]);
    expect(config.kafka.brokers.length).toBeGreaterThanOrEqual(3);
    expect(config.topics.replicationFactor).toBe(3);
    const set = docs.find((d) => d.kind === 'StatefulSet');
    expect(set.spec.replicas).toBeGreaterThan(1);
    expect(set.spec.volumeClaimTemplates.map((v: { metadata: { name: string } }) => v.metadata.name)).toContain('state');
    const container = set.spec.template.spec.containers[0];
    expect(container.env).toContainEqual({ name: 'MODESTREAM_NODE__ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(docs.some((d) => d.kind === 'Service' && d.metadata.name === set.spec.serviceName && d.spec.clusterIP === 'None')).toBe(true);
  });
});
