/**
 * Configuration: one zod schema is the single source of truth for keys, types, defaults and the
 * `Config` type. Layers, later wins: defaults < config file < MODESTREAM_* env < command-line flags.
 * This module only parses and merges plain values; reading the file and the environment is the CLI's job.
 */
import { z } from 'zod';
import { ConfigError } from './errors.js';

const hostPort = z
  .string()
  .regex(/^[^\s:]+:\d{1,5}$/, { message: 'expected "host:port"' });

/** A list given as an array, or as one comma-separated string (how env vars and flags carry lists). */
const list = <T extends z.ZodType>(item: T) =>
  z.preprocess(
    // "3,4" from a flag or env var is a list; so is a lone number (MODESTREAM_..._CONV_CHANNELS=4 parses as JSON 4).
    (v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : typeof v === 'number' ? [v] : v),
    z.array(item),
  );

const topicName = z.string().regex(/^[a-zA-Z0-9._-]{1,249}$/, { message: 'expected a Kafka topic name' });
const port = z.number().int().min(1).max(65535);

export const KafkaConfig = z
  .object({
    brokers: list(hostPort).pipe(z.array(hostPort).min(1)).default(['127.0.0.1:9092']),
    clientId: z.string().min(1).default('modestream'),
    /** TLS: true (the system's CAs) or a CA file for a private CA, e.g. the local broker's <dataDir>/tls/ca.pem. */
    ssl: z
      .union([
        z.boolean(),
        z.object({ caFile: z.string().min(1).optional(), rejectUnauthorized: z.boolean().default(true) }).strict(),
      ])
      .default(false),
    sasl: z
      .object({
        mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
        username: z.string(),
        password: z.string(),
      })
      .strict()
      .optional(),
    connectionTimeoutMs: z.number().int().positive().default(3000),
    /** How long the group waits for a silent member (a kill -9'd process) before rebalancing. */
    sessionTimeoutMs: z.number().int().min(1000).default(30_000),
    heartbeatIntervalMs: z.number().int().min(100).default(3000),
    /**
     * How long a fetch waits on the broker for new records (Kafka's fetch.max.wait.ms, 500 ms there too;
     * kafkajs's own default is 5 s). A consumer stops only after its fetch in flight returns, so this bounds
     * each consumer's share of a graceful shutdown; a busy topic answers at once whatever it is.
     */
    fetchMaxWaitMs: z.number().int().min(10).max(30_000).default(500),
    /** Must exceed the largest message, or kafkajs stalls on it (ARCHITECTURE.md section 4). */
    maxBytesPerPartition: z.number().int().positive().default(8 * 1024 * 1024),
    /**
     * The most bytes (keys + values) the router puts in one partition's record batch: a chunk of web
     * images is sent in several requests, so no batch exceeds the broker's message.max.bytes (1 MB by default).
     */
    maxBatchBytes: z.number().int().min(1024).default(1_000_000),
    /**
     * A stage whose own processing fails this many times in a row is given up (liveness fails, the
     * orchestrator restarts the process); Kafka outages are waited out however long (streams/health.ts).
     */
    maxRestarts: z.number().int().min(0).default(5),
    /**
     * The router's Kafka transactions (pipeline.exactlyOnce): a transaction left open by a node that died
     * and never comes back blocks read-committed readers of the partitions it wrote (the sharders) for
     * this long, plus the broker's abort check (10 s). It only spans sending a chunk, its offsets and the
     * commit (embedding happens before), so it can be small; the broker caps it (transaction.max.timeout.ms).
     */
    transactionTimeoutMs: z.number().int().min(1000).default(10_000),
  })
  .strict();

export const TopicsConfig = z
  .object({
    pairs: topicName.default('modestream.pairs'),
    dlq: topicName.default('modestream.pairs.dlq'),
    routed: topicName.default('modestream.routed'),
    /** Compacted, one partition: routing epochs (chunked) and controller claims, in one total order. */
    control: topicName.default('modestream.control'),
    /** One partition, never written: the controller group's member holding partition 0 leads. */
    leader: topicName.default('modestream.leader'),
    /** Compacted, keyed by node id: each node's heartbeat (roles, partitions, restore progress). */
    nodes: topicName.default('modestream.nodes'),
    /** Compacted, keyed by model version: trained expert and seed weights, for any node to assemble snapshots. */
    models: topicName.default('modestream.models'),
    /** A uniform sample of the routed records, from every router: the seed model's cluster-wide training data. */
    sample: topicName.default('modestream.sample'),
    pairsPartitions: z.number().int().min(1).default(4),
    routedPartitions: z.number().int().min(1).default(4),
    /** Unset: the brokers' default.replication.factor (the local cluster sets min(3, nodes)). */
    replicationFactor: z.number().int().min(1).optional(),
    /** Create missing topics at start-up (off where an admin owns the cluster's topics). */
    create: z.boolean().default(true),
  })
  .strict();

export const GroupsConfig = z
  .object({
    router: z.string().min(1).default('modestream.router'),
    sharder: z.string().min(1).default('modestream.sharder'),
    /** Leader election of the controller role (ARCHITECTURE.md section 4). */
    controller: z.string().min(1).default('modestream.controller'),
  })
  .strict();

/** Upper bounds on what one input message may carry; anything beyond goes to the dead-letter topic. */
export const LimitsConfig = z
  .object({
    maxMessageBytes: z.number().int().positive().default(4 * 1024 * 1024),
    maxIdChars: z.number().int().positive().default(256),
    maxCaptionChars: z.number().int().positive().default(4096),
    maxImageSide: z.number().int().positive().default(4096),
    maxImagePixels: z.number().int().positive().default(4096 * 4096),
    maxEmbeddingDim: z.number().int().positive().default(4096),
    maxMetaBytes: z.number().int().positive().default(16 * 1024),
  })
  .strict();

export const HashedEmbedderConfig = z
  .object({
    kind: z.literal('hashed'),
    dim: z.number().int().min(8).max(8192).default(256),
    seed: z.number().int().min(0).default(0),
    /** Word n-grams up to this length (1 = unigrams only). */
    wordNgrams: z.number().int().min(1).max(3).default(2),
    /** Character n-gram lengths taken inside each word (with boundary marks); [] disables them. */
    charNgrams: list(z.coerce.number().int().min(2).max(6)).default([3, 4]),
  })
  .strict();

/**
 * Where a pretrained encoder's files are: `model` names one pulled by `modestream models pull` (under
 * `modelsDir`), `dir` is any local directory laid out as docs/embedders.md says. Exactly one of them.
 */
const modelName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, { message: 'expected a model name such as "minilm-l6"' });
const modelLocation = { dir: z.string().min(1).optional(), model: modelName.optional() };

export const OnnxEmbedderConfig = z
  .object({
    kind: z.literal('onnx'),
    ...modelLocation,
    maxTokens: z.number().int().positive().default(128),
    pooling: z.enum(['mean', 'cls']).default('mean'),
    /** onnxruntime intra-op threads per session; each router thread owns one session. */
    threads: z.number().int().min(1).max(64).default(1),
  })
  .strict();

export const TfjsGraphEmbedderConfig = z
  .object({
    kind: z.literal('tfjs-graph'),
    dir: z.string().min(1),
    maxTokens: z.number().int().positive().default(128),
    pooling: z.enum(['mean', 'cls']).default('mean'),
  })
  .strict();

/** A static (Model2Vec-style) embedder distilled from a pulled encoder: token vectors, no network to run. */
export const StaticEmbedderConfig = z
  .object({
    kind: z.literal('static'),
    ...modelLocation,
    maxTokens: z.number().int().positive().default(128),
  })
  .strict();

export const EmbedderConfig = z.discriminatedUnion('kind', [
  HashedEmbedderConfig,
  OnnxEmbedderConfig,
  TfjsGraphEmbedderConfig,
  StaticEmbedderConfig,
]);

/** The default embedding space: the pulled all-MiniLM-L6-v2 (`modestream models pull`). */
export const DEFAULT_EMBEDDER = { kind: 'onnx', model: 'minilm-l6' } as const;

export const ClusteringConfig = z
  .object({
    /** m: fine clusters (paper: 1024). */
    fine: z.number().int().min(1).default(1024),
    /** n: coarse clusters = experts. */
    experts: z.number().int().min(1).default(4),
    /** Reservoir size; centers are bootstrapped once this many caption embeddings have arrived. */
    sample: z.number().int().min(1).default(20_000),
    /** Balanced (auction) assignment as in the official MoDE code, or plain nearest-center. */
    balanced: z.boolean().default(true),
    /** Cluster the data straight into n experts (the paper's one-stage ablation). */
    oneStage: z.boolean().default(false),
    seed: z.number().int().min(0).default(1),
    maxIterations: z.number().int().min(1).default(25),
    tolerance: z.number().min(0).default(1e-4),
    /** Online refinement: mini-batch k-means on routed embeddings; a new epoch once centers move this far. */
    refine: z
      .object({
        enabled: z.boolean().default(true),
        batch: z.number().int().min(1).default(2048),
        /** Mean center displacement (L2) that triggers a new centroid epoch. */
        moveThreshold: z.number().positive().default(0.02),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** What an expert's image tower eats: pixels (resized to this shape) or precomputed image embeddings. */
export const ImageInputConfig = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('pixels'),
      width: z.number().int().min(4).max(1024).default(28),
      height: z.number().int().min(4).max(1024).default(28),
      channels: z.union([z.literal(1), z.literal(3)]).default(1),
    })
    .strict(),
  z.object({ kind: z.literal('embedding'), dim: z.number().int().min(1).max(8192) }).strict(),
]);

/** The CLIP expert model (ARCHITECTURE.md sections 2 and 4) and how experts are trained. */
export const ExpertsConfig = z
  .object({
    imageInput: z
      .preprocess((v) => (v !== null && typeof v === 'object' && !Array.isArray(v) && !('kind' in v) ? { kind: 'pixels', ...v } : v), ImageInputConfig)
      .prefault({ kind: 'pixels' }),
    /** Image tower (pixels): a patchify stem (conv with kernel = stride = patch) to stemChannels, ReLU... */
    patch: z.number().int().min(1).max(64).default(4),
    stemChannels: z.number().int().min(1).max(4096).default(64),
    /** ...then optional conv3x3 + ReLU + 2x2 average-pooling stages (slow to train on CPU backends). */
    convChannels: list(z.coerce.number().int().min(1).max(1024)).default([]),
    imageHidden: z.number().int().min(1).default(256),
    textHidden: z.number().int().min(1).default(256),
    /** Shared embedding space. */
    projection: z.number().int().min(2).default(128),
    /** CLIP's temperature: logit scale starts at 1/0.07 and is clamped at 100. */
    logitScaleInit: z.number().positive().default(1 / 0.07),
    logitScaleMax: z.number().positive().default(100),
    training: z
      .object({
        steps: z.number().int().min(1).default(1500),
        batch: z.number().int().min(2).default(256),
        learningRate: z.number().positive().default(2e-3),
        warmupSteps: z.number().int().min(0).default(100),
        /** Decoupled (AdamW) weight decay, applied to weight matrices only. */
        weightDecay: z.number().min(0).default(0.05),
        beta1: z.number().min(0).max(1).default(0.9),
        beta2: z.number().min(0).max(1).default(0.98),
        epsilon: z.number().positive().default(1e-6),
        /** Share of each expert batch drawn from other experts' shards (the official MoDE code: 2%). */
        outOfClusterShare: z.number().min(0).max(1).default(0.02),
        /** Steps of the shared seed model on a sample of all shards; experts branch from it. */
        seedSteps: z.number().int().min(1).default(1500),
        checkpointEvery: z.number().int().min(1).default(100),
        seed: z.number().int().min(0).default(7),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** When experts are retrained, and how the set of experts follows the stream (ARCHITECTURE.md section 3). */
export const ControllerConfig = z
  .object({
    retrain: z
      .object({
        /** Retrain an expert once this many records arrived since its last training started... */
        pendingRecords: z.number().int().min(1).default(5000),
        /** ...or once its oldest untrained record is this old (freshness). */
        maxAgeSeconds: z.number().positive().default(3600),
        /** Experts with fewer records are not trained on their own (they serve with the seed). */
        minRecords: z.number().int().min(1).default(500),
        /** Training jobs at once (one per accelerator). */
        concurrency: z.number().int().min(1).default(1),
        /** First retry delay after a failed job; doubles per failure up to maxBackoffSeconds. */
        backoffSeconds: z.number().positive().default(30),
        maxBackoffSeconds: z.number().positive().default(1800),
      })
      .strict()
      .prefault({}),
    /** The seed model is trained once the shards hold this many records. */
    seedMinRecords: z.number().int().min(1).default(2000),
    /**
     * The seed's training data in a cluster: routers send this share of the pairs (chosen by a hash of the
     * id, so a redelivery makes the same choice) to the sample topic; each trainer node keeps a reservoir
     * of `size` of them. The seed trains on it once it holds a batch; before that, on the local shards.
     */
    seedSample: z
      .object({
        rate: z.number().min(0).max(1).default(0.05),
        size: z.number().int().min(0).default(20_000),
      })
      .strict()
      .prefault({}),
    tickMs: z.number().int().min(50).default(2000),
    drift: z
      .object({
        enabled: z.boolean().default(true),
        /**
         * Novelty radius of a fine cluster: this quantile of its members' distances to its center (bootstrap
         * sample, or the buffer for clusters novelty creates). Derived from the data, so it holds in any
         * embedding space (src/cluster/novelty.ts).
         */
        radiusQuantile: z.number().gt(0).lt(1).default(0.95),
        /** A routed pair beyond radius x margin of its fine cluster is a novelty candidate (buffered). */
        radiusMargin: z.number().positive().default(1),
        /** Fine clusters with fewer sample members than this take the sample-wide quantile as radius. */
        minRadiusMembers: z.number().int().min(1).default(5),
        /**
         * Optional absolute override (L2 on unit vectors): a pair farther than this from its fine center is
         * a candidate whatever its cluster's radius. Unset by default: an absolute distance belongs to one
         * embedding space (1.25 was tuned for the hashed embedder and flags nothing in MiniLM space).
         */
        noveltyDistance: z.number().positive().optional(),
        /** Novel pairs collected before they are clustered into new fine centers. */
        bufferSize: z.number().int().min(2).default(300),
        /** New fine centers per novelty clustering. */
        newClusters: z.number().int().min(1).default(8),
        /** New fine clusters with fewer buffered pairs are dropped as noise. */
        minClusterSize: z.number().int().min(1).default(20),
        /**
         * A buffer cluster becomes a new fine cluster only if the median distance of its members to its own
         * center is at most this times their median distance to the nearest existing fine center: a dense
         * group the current centers do not explain. Otherwise it is a stationary tail and is dropped.
         * Unset: calibrated for each model (ratioFactor below), else the value measured for the embedder's
         * kind of space (src/cluster/novelty.ts, maxRatioFor).
         */
        maxRatio: z.number().positive().optional(),
        /**
         * Unset maxRatio is calibrated per model at bootstrap: this factor x the 5th percentile of the ratios
         * of buffers of the sample's own tail (src/cluster/bootstrap.ts, calibrateMaxRatio). Measured in
         * MiniLM space (bench/novelty.ts, after online refinement): thresholds 0.927 (256 fine) and 0.991
         * (1024 fine), no cluster of 100 stationary buffers below 0.930 / 1.068 (thin with 256); a new
         * family found within 3,000 pairs in 20/20 runs at both sizes.
         */
        ratioFactor: z.number().gt(0).max(1).default(0.85),
        /**
         * A new fine center spawns a new expert when it is farther from every coarse center than
         * spawnFactor x this quantile of the existing fine centers' distances to their own coarse center;
         * otherwise it joins the nearest expert.
         */
        spawnQuantile: z.number().gt(0).max(1).default(0.5),
        spawnFactor: z.number().positive().default(1),
        /** An expert holding more than splitFactor x the mean share of records is split in two... */
        splitFactor: z.number().min(1).default(3),
        /** ...if it has at least this many records. */
        minSplitRecords: z.number().int().min(2).default(20_000),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export const SnapshotsConfig = z
  .object({
    /** Where snapshots are published; default <stateDir>/snapshots. */
    dir: z.string().min(1).optional(),
    /** Versions kept (older ones are deleted after a publish). */
    keep: z.number().int().min(1).default(5),
    /** Routing-weight formula written into snapshots (evaluators may override it). */
    formula: z.enum(['code', 'paper', 'uniform']).default('code'),
  })
  .strict();

export const BackendName = z.enum(['auto', 'tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu']);

/** Kafka's StorageTool reads `[name=...,password=...]`: no separators, quotes or spaces inside. */
const scramValue = z.string().regex(/^[^\s,=[\]"'\\]{1,128}$/, { message: 'expected 1-128 characters without spaces, quotes, backslashes, ",", "=", "[" or "]"' });

export const LocalBrokerConfig = z
  .object({
    port: port.default(9092),
    controllerPort: port.default(9093),
    dataDir: z.string().min(1).default('.modestream/kafka'),
    heapMb: z.number().int().min(128).default(512),
    startTimeoutMs: z.number().int().positive().default(90_000),
    /** KRaft nodes on loopback, each broker and controller (deploy/kafka/layout.ts: ports, dirs). */
    nodes: z.number().int().min(1).max(9).default(1),
    /** Adds a SASL_PLAINTEXT listener with this SCRAM-SHA-256 user, created when the storage is formatted. */
    sasl: z.object({ username: scramValue, password: scramValue }).strict().optional(),
    /** Adds an SSL listener; its self-signed CA and keystore are made with keytool into <dataDir>/tls. */
    tls: z.boolean().default(false),
  })
  .strict();

export const HttpConfig = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    /** 0 picks a free port (tests). */
    port: z.number().int().min(0).max(65535).default(8080),
    /**
     * Bearer token for /snapshots/* (and /metrics with protectMetrics); unset: open. A secret: set it by
     * MODESTREAM_HTTP__TOKEN, never logged. A number-looking value is taken as its text.
     */
    token: z.preprocess((v) => (typeof v === 'number' ? String(v) : v), z.string().min(16, { message: 'expected at least 16 characters' })).optional(),
    /** Also require the token on /metrics (then give Prometheus `authorization: {credentials: ...}`). */
    protectMetrics: z.boolean().default(false),
  })
  .strict();

export const PipelineConfig = z
  .object({
    /** Messages handed to the pipeline at once: one embed call, one routing matmul, one LMDB transaction. */
    chunkSize: z.number().int().min(1).max(100_000).default(1000),
    /**
     * Worker threads running the router role (0: on the main thread). One thread lets routing and
     * sharding use two cores; more help only with more cores than the broker and sharder need.
     */
    routerThreads: z.number().int().min(0).max(64).default(1),
    /**
     * Caption -> embedding cache entries per router (0: off). Web crawls repeat alt texts ("image",
     * product names); a hit skips the encoder. Bounded LRU: about (dim x 4 + caption) bytes an entry.
     */
    embedCache: z.number().int().min(0).max(10_000_000).default(20_000),
    /**
     * The router publishes each chunk's routed records, dead letters and samples and commits its input
     * offsets in one Kafka transaction, so a chunk redelivered after a crash and routed differently is
     * stored once in the cluster (ARCHITECTURE.md section 4). Off: at-least-once (brokers without
     * transactions, benchmarks).
     */
    exactlyOnce: z.boolean().default(true),
    /**
     * Offsets per input partition within which the router drops a pair whose id it already published
     * (a producer's resend; 0: off). Rebuilt from the pairs topic when a partition moves, so it holds
     * across nodes (streams/recent-ids.ts). Costs a read-back of this many messages per partition taken.
     */
    dedupWindow: z.number().int().min(0).max(10_000_000).default(10_000),
    /**
     * Encoded images (JPEG, PNG...) each router decodes at once, natively, at ingestion (0: one per
     * core). They run on libuv's thread pool, so more than UV_THREADPOOL_SIZE (default 4) only queue.
     */
    imageDecoders: z.number().int().min(0).max(256).default(0),
    /**
     * Keep each encoded image file as received next to its decoded pixels (routed topic and shard), for
     * export. Off: only the model-size pixels travel and are stored (a 1600x1200 JPEG is ~350 KB, its
     * 64x64 RGB pixels 12 KB).
     */
    keepOriginalImages: z.boolean().default(true),
  })
  .strict();

/** This process's place in a cluster of modestream nodes. */
export const NodeConfig = z
  .object({
    /** Stable across restarts; default <hostname>-<hash of the state dir> (app/node-id.ts). */
    id: z.string().regex(/^[a-zA-Z0-9._-]{1,64}$/, { message: 'expected 1-64 letters, digits, ".", "_" or "-"' }).optional(),
    /** How often the node heartbeats on the nodes topic; a node silent for 3 intervals is reported dead. */
    heartbeatMs: z.number().int().min(100).default(2000),
  })
  .strict();

export const Role = z.enum(['router', 'sharder', 'controller', 'trainer', 'http']);

export const ConfigSchema = z
  .object({
    kafka: KafkaConfig.prefault({}),
    topics: TopicsConfig.prefault({}),
    groups: GroupsConfig.prefault({}),
    stateDir: z.string().min(1).default('.modestream/state'),
    limits: LimitsConfig.prefault({}),
    // Keys without `kind` (`embedder.threads=2`) adjust the default embedder.
    embedder: z
      .preprocess((v) => (isPlainObject(v) && !('kind' in v) ? { ...DEFAULT_EMBEDDER, ...v } : v), EmbedderConfig)
      .prefault({ ...DEFAULT_EMBEDDER }),
    /** Pulled pretrained encoders (`modestream models pull`), one directory per model name. */
    modelsDir: z.string().min(1).default('.modestream/models'),
    clustering: ClusteringConfig.prefault({}),
    backend: BackendName.default('auto'),
    localBroker: LocalBrokerConfig.prefault({}),
    http: HttpConfig.prefault({}),
    experts: ExpertsConfig.prefault({}),
    snapshots: SnapshotsConfig.prefault({}),
    controller: ControllerConfig.prefault({}),
    pipeline: PipelineConfig.prefault({}),
    node: NodeConfig.prefault({}),
    roles: list(Role).pipe(z.array(Role).min(1)).default(['router', 'sharder', 'controller', 'trainer', 'http']),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .strict()
      .prefault({}),
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;
export type KafkaSettings = Config['kafka'];
export type TopicSettings = Config['topics'];
export type Limits = Config['limits'];
export type EmbedderSettings = Config['embedder'];
export type ClusteringSettings = Config['clustering'];
export type Backend = z.infer<typeof BackendName>;
export type LocalBrokerSettings = Config['localBroker'];
export type ExpertSettings = Config['experts'];
export type TrainingSettings = Config['experts']['training'];
export type ImageInput = Config['experts']['imageInput'];
export type ControllerSettings = Config['controller'];

/** Where snapshots live for a config. */
export const snapshotsDirOf = (config: Pick<Config, 'stateDir' | 'snapshots'>): string => config.snapshots.dir ?? `${config.stateDir}/snapshots`;
export type RoleName = z.infer<typeof Role>;

/** One layer of raw input and where it came from, for error messages ("set by MODESTREAM_KAFKA__BROKERS"). */
export interface ConfigLayer {
  origin: string;
  values: Record<string, unknown>;
  /** Per dotted path, a more precise origin than `origin` (the env var or flag that set it). */
  originOf?: (path: string) => string | undefined;
}

export const ENV_PREFIX = 'MODESTREAM_';
/** MODESTREAM_* variables that are not configuration keys: the config file path, debugging, the client's snapshot token, test knobs. */
const NOT_CONFIG = /^(CONFIG|DEBUG|WEBGPU_ALLOW_SOFTWARE|SNAPSHOT_TOKEN|TEST_[A-Z0-9_]*)$/;

/**
 * MODESTREAM_KAFKA__BROKERS=a:9092,b:9092 -> {kafka: {brokers: "a:9092,b:9092"}}.
 * `__` separates levels; segments are camelCased (STATE_DIR -> stateDir). Values are JSON when they
 * parse as JSON (numbers, booleans, objects), otherwise plain strings.
 */
export function envLayer(env: Record<string, string | undefined>): ConfigLayer {
  const values: Record<string, unknown> = {};
  const origins = new Map<string, string>();
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || raw === undefined || NOT_CONFIG.test(name.slice(ENV_PREFIX.length))) continue;
    const path = name
      .slice(ENV_PREFIX.length)
      .split('__')
      .map((seg) => seg.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()));
    setPath(values, path, parseValue(path, raw));
    origins.set(path.join('.'), name);
  }
  return { origin: 'environment', values, originOf: (p) => longestPrefix(origins, p) };
}

/** `--set a.b=c` style assignments, plus named flags already mapped to paths by the CLI. */
export function assignmentsLayer(origin: string, assignments: Record<string, string | unknown>): ConfigLayer {
  const values: Record<string, unknown> = {};
  const origins = new Map<string, string>();
  for (const [path, raw] of Object.entries(assignments)) {
    if (raw === undefined) continue;
    setPath(values, path.split('.'), typeof raw === 'string' ? parseValue(path.split('.'), raw) : raw);
    origins.set(path, `${origin} ${path}`);
  }
  return { origin, values, originOf: (p) => longestPrefix(origins, p) };
}

/** Parses `key.path=value` into a pair; throws ConfigError naming the bad assignment. */
export function parseAssignment(text: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new ConfigError(`invalid --set "${text}": expected key.path=value`);
  return [text.slice(0, eq).trim(), text.slice(eq + 1)];
}

/** Merges the layers over the defaults and validates; every problem is named by key and origin. */
export function resolveConfig(layers: readonly ConfigLayer[]): Config {
  const merged: Record<string, unknown> = {};
  for (const layer of layers) deepMerge(merged, layer.values);
  const parsed = ConfigSchema.safeParse(merged);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.flatMap((issue) => {
    const at = issue.path.map(String);
    // An unknown key is reported at the key itself, so its origin (which env var, which file) is found.
    const entries = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => ({ path: [...at, k].join('.'), message: 'unknown key' })) : [{ path: at.join('.'), message: issue.message }];
    return entries.map(({ path, message }) => {
      const origin = originFor(layers, path);
      return `${path === '' ? '(top level)' : path}: ${message}${origin ? ` (from ${origin})` : ''}`;
    });
  });
  throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
}

function originFor(layers: readonly ConfigLayer[], path: string): string | undefined {
  for (let i = layers.length - 1; i >= 0; i--) {
    const layer = layers[i]!;
    const precise = layer.originOf?.(path);
    if (precise) return precise;
    if (hasPathPrefix(layer.values, path.split('.'))) return layer.origin;
  }
  return undefined;
}

function hasPathPrefix(values: Record<string, unknown>, path: string[]): boolean {
  let node: unknown = values;
  for (const seg of path) {
    if (node === null || typeof node !== 'object' || !(seg in (node as object))) return false;
    node = (node as Record<string, unknown>)[seg];
  }
  return path.length > 0;
}

function longestPrefix(origins: Map<string, string>, path: string): string | undefined {
  for (let p = path; p !== ''; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
    const hit = origins.get(p);
    if (hit) return hit;
  }
  return undefined;
}

/** Credentials are taken verbatim: a password such as 123456 or true must stay a string. */
const VERBATIM = new Set(['username', 'password']);

function parseValue(path: readonly string[], raw: string): unknown {
  return VERBATIM.has(path[path.length - 1]!) ? raw : parseScalar(raw);
}

function parseScalar(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  path.forEach((seg, i) => {
    if (i === path.length - 1) {
      node[seg] = value;
      return;
    }
    const next = node[seg];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[seg] = {};
    node = node[seg] as Record<string, unknown>;
  });
}

function deepMerge(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(source)) {
    const current = target[key];
    if (isPlainObject(value) && isPlainObject(current)) deepMerge(current, value);
    else target[key] = isPlainObject(value) ? structuredClone(value) : value;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
