/**
 * Hand-written TensorFlow.js graph models for tests: model.json (format "graph-model", a GraphDef in
 * protobuf-JSON form) plus weight shards, as tensorflowjs_converter lays them out.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

type TfDtype = 'DT_FLOAT' | 'DT_INT32';
export type GraphNode = { name: string; op: string; input?: string[]; attr?: Record<string, unknown> };

const dtypeName = { DT_FLOAT: 'float32', DT_INT32: 'int32' } as const;

export const attr = {
  type: (t: TfDtype) => ({ type: t }),
  shape: (dims: number[]) => ({ shape: { dim: dims.map((d) => ({ size: String(d) })) } }),
};

export function placeholder(name: string, dtype: TfDtype, dims: number[]): GraphNode {
  return { name, op: 'Placeholder', attr: { dtype: attr.type(dtype), shape: attr.shape(dims) } };
}

export interface ConstWeight {
  name: string;
  dtype: TfDtype;
  shape: number[];
  values: readonly number[];
}

export function constNode(w: ConstWeight): GraphNode {
  return {
    name: w.name,
    op: 'Const',
    attr: {
      dtype: attr.type(w.dtype),
      value: { tensor: { dtype: w.dtype, tensorShape: { dim: w.shape.map((d) => ({ size: String(d) })) } } },
    },
  };
}

export interface GraphModelSpec {
  nodes: GraphNode[];
  /** Weight groups; each group's weights go to one shard file, in order. */
  weightGroups: ConstWeight[][];
  format?: string;
}

/** Writes model.json and group<N>-shard1of1.bin into `dir`; returns the shard file names. */
export async function writeGraphModel(dir: string, spec: GraphModelSpec): Promise<string[]> {
  const shards = spec.weightGroups.map((_, g) => `group${g + 1}-shard1of1.bin`);
  const weightsManifest = spec.weightGroups.map((group, g) => ({
    paths: [shards[g]!],
    weights: group.map((w) => ({ name: w.name, shape: w.shape, dtype: dtypeName[w.dtype] })),
  }));
  const modelJson = {
    format: spec.format ?? 'graph-model',
    generatedBy: 'modestream-test',
    convertedBy: null,
    modelTopology: { node: spec.nodes, library: {}, versions: { producer: 1 } },
    weightsManifest,
  };
  await writeFile(join(dir, 'model.json'), JSON.stringify(modelJson));
  for (const [g, group] of spec.weightGroups.entries()) {
    const parts = group.map((w) => {
      const typed = w.dtype === 'DT_FLOAT' ? Float32Array.from(w.values) : Int32Array.from(w.values);
      return Buffer.from(typed.buffer);
    });
    await writeFile(join(dir, shards[g]!), Buffer.concat(parts));
  }
  return shards;
}
