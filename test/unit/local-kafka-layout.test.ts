/** The local Kafka cluster's pure parts: port scheme, voters, node dirs, server.properties (deploy/kafka). */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clusterLayout, quorumVoters } from '../../deploy/kafka/layout.js';
import { configuredPort, kafkaServerProperties, scramCredentialArg } from '../../deploy/kafka/properties.js';
import { envLayer, resolveConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { tlsOptions } from '../../streams/kafka.js';

const props = (text: string) => new Map(text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

describe('cluster layout', () => {
  it('keeps one node where the single-node broker always was', () => {
    const layout = clusterLayout({ dataDir: 'd', port: 9092, controllerPort: 9093 });
    expect(layout.nodes).toEqual([{ id: 1, dir: resolve('d'), port: 9092, controllerPort: 9093 }]);
    expect(layout.bootstrap).toBe('127.0.0.1:9092');
    expect(layout.voters).toBe('1@127.0.0.1:9093');
    expect(layout.saslBootstrap).toBeUndefined();
  });

  it('moves the controller ports past the client ports when the defaults would collide', () => {
    const layout = clusterLayout({ dataDir: 'd', port: 9092, controllerPort: 9093, nodes: 3 });
    expect(layout.nodes.map((n) => [n.id, n.port, n.controllerPort, n.dir])).toEqual([
      [1, 9092, 9095, join(resolve('d'), 'node-1')],
      [2, 9093, 9096, join(resolve('d'), 'node-2')],
      [3, 9094, 9097, join(resolve('d'), 'node-3')],
    ]);
    expect(layout.bootstrap).toBe('127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094');
    expect(layout.voters).toBe('1@127.0.0.1:9095,2@127.0.0.1:9096,3@127.0.0.1:9097');
  });

  it('keeps controller ports that do not collide', () => {
    const layout = clusterLayout({ dataDir: 'd', port: 19310, controllerPort: 19320, nodes: 3, sasl: true });
    expect(layout.nodes.map((n) => [n.port, n.saslPort, n.controllerPort])).toEqual([
      [19310, 19313, 19320],
      [19311, 19314, 19321],
      [19312, 19315, 19322],
    ]);
    expect(layout.saslBootstrap).toBe('127.0.0.1:19313,127.0.0.1:19314,127.0.0.1:19315');
  });

  it('puts TLS ports after the SASL ports', () => {
    const layout = clusterLayout({ dataDir: 'd', port: 100, controllerPort: 101, nodes: 2, sasl: true, tls: true });
    expect(layout.nodes.map((n) => [n.port, n.saslPort, n.tlsPort, n.controllerPort])).toEqual([
      [100, 102, 104, 106],
      [101, 103, 105, 107],
    ]);
    expect(layout.tlsBootstrap).toBe('127.0.0.1:104,127.0.0.1:105');
  });

  it('gives every port once', () => {
    for (const nodes of [1, 2, 3, 5]) {
      for (const [sasl, tls] of [[false, false], [true, false], [false, true], [true, true]]) {
        const layout = clusterLayout({ dataDir: 'd', port: 9092, controllerPort: 9093, nodes, sasl, tls });
        const ports = layout.nodes.flatMap((n) => [n.port, n.saslPort, n.tlsPort, n.controllerPort].filter((p) => p !== undefined));
        expect(new Set(ports).size).toBe(ports.length);
      }
    }
  });

  it('refuses ports past 65535', () => {
    expect(() => clusterLayout({ dataDir: 'd', port: 65534, controllerPort: 9093, nodes: 3 })).toThrow(ConfigError);
  });

  it('writes voters as id@host:controllerPort', () => {
    expect(quorumVoters([{ id: 1, controllerPort: 5 }, { id: 2, controllerPort: 6 }])).toBe('1@127.0.0.1:5,2@127.0.0.1:6');
  });
});

describe('server.properties', () => {
  it('replicates by min(3, N) with min ISR 2 from three nodes', () => {
    for (const [nodes, rf, isr] of [[1, '1', '1'], [2, '2', '1'], [3, '3', '2'], [5, '3', '2']] as const) {
      const layout = clusterLayout({ dataDir: 'd', port: 9092, controllerPort: 9093, nodes });
      const node = layout.nodes[nodes - 1]!;
      const p = props(kafkaServerProperties({ node, nodeCount: nodes, voters: layout.voters, logsDir: '/x/logs' }));
      expect(p.get('node.id')).toBe(String(nodes));
      expect(p.get('controller.quorum.voters')).toBe(layout.voters);
      expect(p.get('default.replication.factor')).toBe(rf);
      expect(p.get('offsets.topic.replication.factor')).toBe(rf);
      expect(p.get('transaction.state.log.replication.factor')).toBe(rf);
      expect(p.get('min.insync.replicas')).toBe(isr);
      expect(p.get('listeners')).toBe(`PLAINTEXT://127.0.0.1:${node.port},CONTROLLER://127.0.0.1:${node.controllerPort}`);
      expect(p.get('process.roles')).toBe('broker,controller');
    }
  });

  it('adds a SCRAM listener for clients only', () => {
    const layout = clusterLayout({ dataDir: 'd', port: 100, controllerPort: 200, sasl: true });
    const text = kafkaServerProperties({ node: layout.nodes[0]!, nodeCount: 1, voters: layout.voters, logsDir: '/l' });
    const p = props(text);
    expect(p.get('listeners')).toBe('PLAINTEXT://127.0.0.1:100,SASL_PLAINTEXT://127.0.0.1:101,CONTROLLER://127.0.0.1:200');
    expect(p.get('advertised.listeners')).toBe('PLAINTEXT://127.0.0.1:100,SASL_PLAINTEXT://127.0.0.1:101');
    expect(p.get('inter.broker.listener.name')).toBe('PLAINTEXT');
    expect(p.get('sasl.enabled.mechanisms')).toBe('SCRAM-SHA-256');
    expect(p.get('listener.security.protocol.map')).toContain('SASL_PLAINTEXT:SASL_PLAINTEXT');
    expect(configuredPort(text)).toBe(100);
    expect(p.has('listener.name.ssl.ssl.keystore.location')).toBe(false);
    expect(scramCredentialArg({ username: 'alice', password: 's3cret' })).toBe('SCRAM-SHA-256=[name=alice,password=s3cret]');
  });
});

describe('TLS', () => {
  it('adds an SSL listener with the PKCS12 keystore', () => {
    const layout = clusterLayout({ dataDir: 'd', port: 100, controllerPort: 200, tls: true });
    const p = props(kafkaServerProperties({ node: layout.nodes[0]!, nodeCount: 1, voters: layout.voters, logsDir: '/l', tls: { keystore: '/d/tls/broker.p12', keystorePassword: 'pw' } }));
    expect(p.get('listeners')).toBe('PLAINTEXT://127.0.0.1:100,SSL://127.0.0.1:101,CONTROLLER://127.0.0.1:200');
    expect(p.get('listener.security.protocol.map')).toBe('PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL');
    expect(p.get('listener.name.ssl.ssl.keystore.location')).toBe('/d/tls/broker.p12');
    expect(p.get('listener.name.ssl.ssl.keystore.type')).toBe('PKCS12');
  });

  it('kafka.ssl: true, or a CA file read into kafkajs options', () => {
    expect(tlsOptions(resolveConfig([envLayer({ MODESTREAM_KAFKA__SSL: 'true' })]).kafka.ssl)).toBe(true);
    const file = join(mkdtempSync(join(tmpdir(), 'modestream-ca-')), 'ca.pem');
    writeFileSync(file, 'PEM');
    const ssl = resolveConfig([envLayer({ MODESTREAM_KAFKA__SSL__CA_FILE: file })]).kafka.ssl;
    expect(ssl).toEqual({ caFile: file, rejectUnauthorized: true });
    expect(tlsOptions(ssl)).toEqual({ rejectUnauthorized: true, ca: [Buffer.from('PEM')] });
    expect(() => tlsOptions({ caFile: `${file}.missing`, rejectUnauthorized: true })).toThrow(/kafka\.ssl\.caFile: cannot read .*ENOENT/);
  });
});

describe('localBroker config', () => {
  it('defaults to one node without SASL', () => {
    const { localBroker } = resolveConfig([]);
    expect(localBroker.nodes).toBe(1);
    expect(localBroker.sasl).toBeUndefined();
  });

  it('reads credentials from the environment verbatim', () => {
    const env = envLayer({ MODESTREAM_LOCAL_BROKER__SASL__USERNAME: 'alice', MODESTREAM_LOCAL_BROKER__SASL__PASSWORD: '123456', MODESTREAM_KAFKA__SASL__PASSWORD: 'true', MODESTREAM_KAFKA__SASL__USERNAME: 'alice', MODESTREAM_KAFKA__SASL__MECHANISM: 'scram-sha-256' });
    const config = resolveConfig([env]);
    expect(config.localBroker.sasl).toEqual({ username: 'alice', password: '123456' });
    expect(config.kafka.sasl).toEqual({ mechanism: 'scram-sha-256', username: 'alice', password: 'true' });
  });

  it('refuses a password StorageTool would misread, naming the key', () => {
    const bad = { origin: 'test', values: { localBroker: { sasl: { username: 'a', password: 'x,y' } } } };
    expect(() => resolveConfig([bad])).toThrow(/localBroker\.sasl\.password/);
    expect(() => resolveConfig([{ origin: 'test', values: { localBroker: { nodes: 0 } } }])).toThrow(/localBroker\.nodes/);
  });
});
