/**
 * Tiny hand-built ONNX models for tests, written by the product's own protobuf writer (src/onnx/writer.ts):
 * `onnxModel` takes a graph spec with plain number arrays and the opset, as the tests have always used it.
 */
import { DataType, encodeModel, f32Initializer as f32, i64Initializer, type GraphSpec as ProductGraphSpec, type Initializer } from '../../src/onnx/writer.js';

export { DataType, i64Initializer };

export type GraphSpec = Omit<ProductGraphSpec, 'name'> & { opset?: number };

export function f32Initializer(name: string, dims: number[], values: ArrayLike<number>): Initializer {
  return f32(name, dims, Float32Array.from(values));
}

/** A ModelProto (IR version 8, default-domain opset 13 unless given) holding one graph. */
export function onnxModel({ opset = 13, ...graph }: GraphSpec): Uint8Array {
  return encodeModel({ graph: { ...graph, name: 'test-graph' }, opset, producerName: 'modestream-tests' });
}
