/**
 * Just enough protobuf to write ONNX models (there is no onnx package for Node): ModelProto, GraphProto,
 * NodeProto, AttributeProto (INT, INTS, FLOAT), TensorProto (raw little-endian data), ValueInfoProto with
 * fixed or symbolic dimensions. Field numbers are those of onnx/onnx.proto. Pure: bytes in, bytes out.
 * Large payloads (weights) are concatenated as buffers, never spread element by element.
 */

function varint(value: number | bigint): Uint8Array {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return Uint8Array.from(out);
}

const WIRE_VARINT = 0;
const WIRE_FIXED32 = 5;
const WIRE_LEN = 2;
const key = (field: number, wire: number) => varint((field << 3) | wire);

/** Protobuf field encoders; a message is its fields' bytes concatenated. */
export const pb = {
  int(field: number, value: number | bigint): Uint8Array {
    return Buffer.concat([key(field, WIRE_VARINT), varint(value)]);
  },
  float(field: number, value: number): Uint8Array {
    const b = Buffer.alloc(4);
    b.writeFloatLE(value, 0);
    return Buffer.concat([key(field, WIRE_FIXED32), b]);
  },
  bytes(field: number, value: Uint8Array): Uint8Array {
    return Buffer.concat([key(field, WIRE_LEN), varint(value.byteLength), value]);
  },
  string(field: number, value: string): Uint8Array {
    return pb.bytes(field, Buffer.from(value, 'utf8'));
  },
  message(field: number, ...parts: Uint8Array[]): Uint8Array {
    return pb.bytes(field, Buffer.concat(parts));
  },
};

/** TensorProto.DataType values. */
export const DataType = { FLOAT: 1, INT32: 6, INT64: 7 } as const;
/** AttributeProto.AttributeType values. */
const AttrType = { FLOAT: 1, INT: 2, INTS: 7 } as const;

export interface Initializer {
  name: string;
  dims: number[];
  dataType: number;
  /** Little-endian raw bytes, as TensorProto.raw_data. */
  raw: Uint8Array;
}

/** An attribute: an integer, a list of integers, or a float ({ float: x }). */
export type AttributeValue = number | number[] | { float: number };

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  /** Unique node name; defaults to "<op>_<index>". */
  name?: string;
  attributes?: Record<string, AttributeValue>;
}

export interface ValueSpec {
  name: string;
  elemType: number;
  /** A number is a fixed size, a string a symbolic dimension ("N"). */
  shape: (number | string)[];
}

export interface GraphSpec {
  name: string;
  nodes: NodeSpec[];
  initializers: Initializer[];
  inputs: ValueSpec[];
  outputs: ValueSpec[];
}

export interface ModelSpec {
  graph: GraphSpec;
  /** Default-domain opset version. */
  opset: number;
  /** ONNX IR version (8 suits opsets 13 to 17). */
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  /** ModelProto.metadata_props (string pairs readers can query, e.g. InferenceSession metadata). */
  metadata?: Record<string, string>;
}

export function f32Initializer(name: string, dims: number[], values: Float32Array): Initializer {
  const size = dims.reduce((a, b) => a * b, 1);
  if (values.length !== size) throw new RangeError(`initializer ${name}: ${values.length} values for dims [${dims}]`);
  // Node is little-endian on every platform it supports; copy so the bytes are exactly this tensor.
  const data = Float32Array.from(values);
  return { name, dims, dataType: DataType.FLOAT, raw: new Uint8Array(data.buffer) };
}

export function i64Initializer(name: string, dims: number[], values: readonly number[]): Initializer {
  const data = BigInt64Array.from(values, (v) => BigInt(v));
  return { name, dims, dataType: DataType.INT64, raw: new Uint8Array(data.buffer) };
}

function tensorProto(field: number, t: Initializer): Uint8Array {
  return pb.message(field, ...t.dims.map((d) => pb.int(1, d)), pb.int(2, t.dataType), pb.string(8, t.name), pb.bytes(9, t.raw));
}

function valueInfo(field: number, v: ValueSpec): Uint8Array {
  const dims = v.shape.map((d) => pb.message(1, typeof d === 'number' ? pb.int(1, d) : pb.string(2, d)));
  const tensorType = pb.message(1, pb.int(1, v.elemType), pb.message(2, ...dims));
  return pb.message(field, pb.string(1, v.name), pb.message(2, tensorType));
}

function attribute(name: string, value: AttributeValue): Uint8Array {
  if (Array.isArray(value)) return pb.message(5, pb.string(1, name), ...value.map((x) => pb.int(8, x)), pb.int(20, AttrType.INTS));
  if (typeof value === 'object') return pb.message(5, pb.string(1, name), pb.float(2, value.float), pb.int(20, AttrType.FLOAT));
  return pb.message(5, pb.string(1, name), pb.int(3, value), pb.int(20, AttrType.INT));
}

function nodeProto(n: NodeSpec, index: number): Uint8Array {
  return pb.message(
    1,
    ...n.inputs.map((i) => pb.string(1, i)),
    ...n.outputs.map((o) => pb.string(2, o)),
    pb.string(3, n.name ?? `${n.op.toLowerCase()}_${index}`),
    pb.string(4, n.op),
    ...Object.entries(n.attributes ?? {}).map(([k, v]) => attribute(k, v)),
  );
}

/** The serialized ModelProto holding one graph. */
export function encodeModel(m: ModelSpec): Uint8Array {
  const g = m.graph;
  const graph = pb.message(
    7,
    ...g.nodes.map(nodeProto),
    pb.string(2, g.name),
    ...g.initializers.map((t) => tensorProto(5, t)),
    ...g.inputs.map((v) => valueInfo(11, v)),
    ...g.outputs.map((v) => valueInfo(12, v)),
  );
  const parts: Uint8Array[] = [pb.int(1, m.irVersion ?? 8), pb.string(2, m.producerName ?? 'modestream')];
  if (m.producerVersion) parts.push(pb.string(3, m.producerVersion));
  if (m.docString) parts.push(pb.string(6, m.docString));
  parts.push(graph, pb.message(8, pb.string(1, ''), pb.int(2, m.opset)));
  for (const [k, v] of Object.entries(m.metadata ?? {})) parts.push(pb.message(14, pb.string(1, k), pb.string(2, v)));
  return Buffer.concat(parts);
}
