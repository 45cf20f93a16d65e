import { describe, expect, test } from 'vitest';
import { assignmentsLayer, envLayer, resolveConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

describe('configuration layers', () => {
  test('env vars map to nested camelCase keys; lists accept "a,b" and a lone number', () => {
    const config = resolveConfig([
      envLayer({
        MODESTREAM_KAFKA__BROKERS: '10.0.0.1:9092,10.0.0.2:9092',
        MODESTREAM_EXPERTS__CONV_CHANNELS: '4',
        MODESTREAM_EMBEDDER__KIND: 'hashed',
        MODESTREAM_EMBEDDER__CHAR_NGRAMS: '3,5',
        MODESTREAM_MODELS_DIR: '/opt/models',
        UNRELATED: 'x',
        // Process knobs share the prefix but are not keys: no "unknown key" for them.
        MODESTREAM_CONFIG: '/etc/modestream.json',
        MODESTREAM_DEBUG: '1',
        MODESTREAM_TEST_SEED: '7',
        MODESTREAM_WEBGPU_ALLOW_SOFTWARE: '1',
      }),
    ]);
    expect(config.experts.convChannels).toEqual([4]);
    expect(config.embedder).toMatchObject({ kind: 'hashed', charNgrams: [3, 5] });
    expect(config.modelsDir).toBe('/opt/models');
    expect(JSON.stringify(config.kafka.brokers)).toContain('10.0.0.2:9092');
  });

  test('embedder keys without a kind adjust the default (pulled MiniLM) embedder; a hashed-only key is refused by name', () => {
    expect(resolveConfig([envLayer({ MODESTREAM_EMBEDDER__THREADS: '2' })]).embedder).toMatchObject({ kind: 'onnx', model: 'minilm-l6', threads: 2 });
    expect(() => resolveConfig([envLayer({ MODESTREAM_EMBEDDER__CHAR_NGRAMS: '3,5' })])).toThrow(/embedder\.charNgrams: unknown key \(from MODESTREAM_EMBEDDER__CHAR_NGRAMS\)/);
  });

  test('later layers win over earlier ones', () => {
    const config = resolveConfig([envLayer({ MODESTREAM_EXPERTS__CONV_CHANNELS: '8' }), assignmentsLayer('flag', { 'experts.convChannels': '16,32' })]);
    expect(config.experts.convChannels).toEqual([16, 32]);
  });

  test('a wrong value is one error naming the key and where it came from', () => {
    const run = () => resolveConfig([envLayer({ MODESTREAM_EXPERTS__CONV_CHANNELS: 'many' })]);
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(/experts\.convChannels.*MODESTREAM_EXPERTS__CONV_CHANNELS/);
  });
});
