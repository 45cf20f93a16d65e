/**
 * Just enough of a protobuf writer to hand-build tiny ONNX models in tests (no onnx package in Node).
 * Field numbers are those of onnx/onnx.proto (IR version 8); messages are written as nested byte blocks.
 */

type Field = Uint8Array;

function varint(value: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return out;
}

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const key = (field: number, wire: number) => varint((field << 3) | wire);

export const pb = {
  int(field: number, value: number | bigint): Field {
    return Uint8Array.from([...key(field, WIRE_VARINT), ...varint(value)]);
  },
  bytes(field: number, value: Uint8Array): Field {
    return Uint8Array.from([...key(field, WIRE_LEN), ...varint(value.length), ...value]);
  },
  string(field: number, value: string): Field {
    return pb.bytes(field, new TextEncoder().encode(value));
  },
  message(field: number, ...parts: Field[]): Field {
    return pb.bytes(field, Buffer.concat(parts));
  },
};

/** TensorProto.DataType values. */
export const DataType = { FLOAT: 1, INT32: 6, INT64: 7 } as const;
/** AttributeProto.AttributeType values. */
const AttrType = { INT: 2, INTS: 7 } as const;

export interface Initializer {
  name: string;
  dims: number[];
  dataType: number;
  /** Little-endian raw bytes, as TensorProto.raw_data. */
  raw: Uint8Array;
}

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes?: Record<string, number | number[]>;
}

export interface ValueSpec {
  name: string;
  elemType: number;
  /** A number is a fixed size, a string a symbolic dimension ("batch"). */
  shape: (number | string)[];
}

export interface GraphSpec {
  nodes: NodeSpec[];
  initializers: Initializer[];
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  opset?: number;
}

export function f32Initializer(name: string, dims: number[], values: ArrayLike<number>): Initializer {
  const data = Float32Array.from(values);
  return { name, dims, dataType: DataType.FLOAT, raw: new Uint8Array(data.buffer) };
}

export function i64Initializer(name: string, dims: number[], values: readonly number[]): Initializer {
  const data = BigInt64Array.from(values, (v) => BigInt(v));
  return { name, dims, dataType: DataType.INT64, raw: new Uint8Array(data.buffer) };
}

function tensorProto(field: number, t: Initializer): Field {
  return pb.message(field, ...t.dims.map((d) => pb.int(1, d)), pb.int(2, t.dataType), pb.string(8, t.name), pb.bytes(9, t.raw));
}

function valueInfo(field: number, v: ValueSpec): Field {
  const dims = v.shape.map((d) => pb.message(1, typeof d === 'number' ? pb.int(1, d) : pb.string(2, d)));
  const tensorType = pb.message(1, pb.int(1, v.elemType), pb.message(2, ...dims));
  return pb.message(field, pb.string(1, v.name), pb.message(2, tensorType));
}

function attribute(name: string, value: number | number[]): Field {
  return Array.isArray(value)
    ? pb.message(5, pb.string(1, name), ...value.map((x) => pb.int(8, x)), pb.int(20, AttrType.INTS))
    : pb.message(5, pb.string(1, name), pb.int(3, value), pb.int(20, AttrType.INT));
}

function node(n: NodeSpec, index: number): Field {
  return pb.message(
    1,
    ...n.inputs.map((i) => pb.string(1, i)),
    ...n.outputs.map((o) => pb.string(2, o)),
    pb.string(3, `${n.op.toLowerCase()}_${index}`),
    pb.string(4, n.op),
    ...Object.entries(n.attributes ?? {}).map(([k, v]) => attribute(k, v)),
  );
}

/** A ModelProto (IR version 8, default-domain opset 13 unless given) holding one graph. */
export function onnxModel(g: GraphSpec): Uint8Array {
  const graph = pb.message(
    7,
    ...g.nodes.map(node),
    pb.string(2, 'test-graph'),
    ...g.initializers.map((t) => tensorProto(5, t)),
    ...g.inputs.map((v) => valueInfo(11, v)),
    ...g.outputs.map((v) => valueInfo(12, v)),
  );
  return Buffer.concat([
    pb.int(1, 8),
    pb.string(2, 'modestream-test'),
    graph,
    pb.message(8, pb.string(1, ''), pb.int(2, g.opset ?? 13)),
  ]);
}
