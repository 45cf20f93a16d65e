/**
 * One expert's towers as ONNX graphs (default domain, opset 13), computing exactly what
 * src/expert/model.ts's encodeImages / encodeTexts compute with the layers of src/expert/layers.ts:
 *
 * - image tower, pixels: input `pixels` [N, H, W, C] floats in [0, 1] (NHWC, as the tfjs model takes) ->
 *   Transpose to NCHW -> Conv (kernel = stride = patch, no padding: trailing rows/columns that do not fill
 *   a patch are dropped, as patchConv crops) + Relu -> per conv stage: Conv 3x3 pads 1 + Relu +
 *   AveragePool 2x2 stride 2 (floor: odd sides drop their last row/column, as avgPool2 'valid') ->
 *   Transpose back to NHWC and Flatten (tf's reshape [b, -1] flattens in NHWC order) -> Gemm + Relu ->
 *   Gemm -> L2 normalisation;
 * - image tower, embedding: input `image_embedding` [N, dim] -> Gemm + Relu -> Gemm -> L2 normalisation;
 * - text tower: input `caption_embedding` [N, textDim] -> Gemm + Relu -> Gemm -> L2 normalisation.
 *
 * Output `embedding` [N, projection], rows x / sqrt(sum(x^2) + 1e-12), as l2Normalize. N is dynamic.
 * Kernel layouts: patchConv's kernel is [p*p*c, out] with rows ordered (dy, dx, c), conv3x3's [9*c, out]
 * with rows (dy, dx, c); ONNX Conv wants [out, c, kh, kw]. Dense kernels [in, out] are Gemm's B as is.
 * Pure: weights in, bytes out.
 */
import { parameterSpecs, type ExpertArchitecture } from '../expert/model.js';
import { DataType, encodeModel, f32Initializer, i64Initializer, type Initializer, type NodeSpec } from './writer.js';

export const ONNX_OPSET = 13;
/** l2Normalize's epsilon (src/expert/layers.ts), added to the squared norm. */
export const L2_EPSILON = 1e-12;

export const IMAGE_INPUT = { pixels: 'pixels', embedding: 'image_embedding' } as const;
export const TEXT_INPUT = 'caption_embedding';
export const OUTPUT = 'embedding';
/** The symbolic batch dimension. */
export const BATCH_DIM = 'N';

/** Parameter values by name (parameterSpecs names), row-major as tfjs stores them. */
export type ExpertWeights = Record<string, Float32Array>;

export interface TowerOptions {
  /** ModelProto.metadata_props, e.g. { expert: '3', snapshotVersion: '12' }. */
  metadata?: Record<string, string>;
  producerVersion?: string;
}

/** Checks that every parameter the architecture needs is present with the right number of values. */
export function checkWeights(a: ExpertArchitecture, weights: ExpertWeights): void {
  for (const spec of parameterSpecs(a)) {
    const values = weights[spec.name];
    if (!values) throw new RangeError(`missing parameter ${spec.name}`);
    const size = spec.shape.reduce((x, y) => x * y, 1);
    if (values.length !== size) throw new RangeError(`parameter ${spec.name} holds ${values.length} values, its shape [${spec.shape}] needs ${size}`);
  }
}

/** Dense-layer kernel rows ordered (dy, dx, c) -> ONNX Conv weight [out, c, k, k]. */
export function convWeight(kernel: Float32Array, k: number, channels: number, out: number): Float32Array {
  if (kernel.length !== k * k * channels * out) throw new RangeError(`conv kernel holds ${kernel.length} values, expected ${k}*${k}*${channels}*${out}`);
  const w = new Float32Array(kernel.length);
  for (let dy = 0; dy < k; dy++)
    for (let dx = 0; dx < k; dx++)
      for (let c = 0; c < channels; c++) {
        const row = ((dy * k + dx) * channels + c) * out;
        for (let o = 0; o < out; o++) w[((o * channels + c) * k + dy) * k + dx] = kernel[row + o]!;
      }
  return w;
}

class GraphBuilder {
  readonly nodes: NodeSpec[] = [];
  readonly initializers: Initializer[] = [];
  private counter = 0;

  constructor(private readonly weights: ExpertWeights) {}

  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  op(op: string, inputs: string[], attributes?: NodeSpec['attributes'], output = this.fresh(op.toLowerCase())): string {
    this.nodes.push({ op, inputs, outputs: [output], name: `${op.toLowerCase()}_${this.nodes.length}`, ...(attributes ? { attributes } : {}) });
    return output;
  }

  param(name: string): Float32Array {
    const values = this.weights[name];
    if (!values) throw new RangeError(`missing parameter ${name}`);
    return values;
  }

  constant(name: string, dims: number[], values: Float32Array): string {
    this.initializers.push(f32Initializer(name, dims, values));
    return name;
  }

  /** x [N, in] . kernel [in, out] + bias, as dense(). */
  dense(x: string, layer: string, fanIn: number, fanOut: number): string {
    const w = this.constant(`${layer}/kernel`, [fanIn, fanOut], this.param(`${layer}/kernel`));
    const b = this.constant(`${layer}/bias`, [fanOut], this.param(`${layer}/bias`));
    return this.op('Gemm', [x, w, b]);
  }

  /** NCHW conv from a dense-layout kernel, + bias. */
  conv(x: string, layer: string, k: number, channels: number, out: number, attributes: NodeSpec['attributes']): string {
    const w = this.constant(`${layer}/kernel`, [out, channels, k, k], convWeight(this.param(`${layer}/kernel`), k, channels, out));
    const b = this.constant(`${layer}/bias`, [out], this.param(`${layer}/bias`));
    return this.op('Conv', [x, w, b], { kernel_shape: [k, k], ...attributes });
  }

  /** x / sqrt(sum(x^2, axis 1) + eps), written to `output`. */
  l2Normalize(x: string, output: string): string {
    const squared = this.op('Mul', [x, x]);
    this.initializers.push(i64Initializer('l2/axes', [1], [1]));
    const sum = this.op('ReduceSum', [squared, 'l2/axes'], { keepdims: 1 });
    const eps = this.constant('l2/epsilon', [], Float32Array.of(L2_EPSILON));
    const norm = this.op('Sqrt', [this.op('Add', [sum, eps])]);
    return this.op('Div', [x, norm], undefined, output);
  }
}

function model(name: string, b: GraphBuilder, input: { name: string; shape: (number | string)[] }, projection: number, options: TowerOptions): Uint8Array {
  return encodeModel({
    opset: ONNX_OPSET,
    producerName: 'modestream',
    ...(options.producerVersion ? { producerVersion: options.producerVersion } : {}),
    ...(options.metadata ? { metadata: options.metadata } : {}),
    graph: {
      name,
      nodes: b.nodes,
      initializers: b.initializers,
      inputs: [{ name: input.name, elemType: DataType.FLOAT, shape: input.shape }],
      outputs: [{ name: OUTPUT, elemType: DataType.FLOAT, shape: [BATCH_DIM, projection] }],
    },
  });
}

/** The image tower's input name and shape (N symbolic). */
export function imageInputOf(a: ExpertArchitecture): { name: string; shape: (number | string)[] } {
  const input = a.imageInput;
  return input.kind === 'pixels'
    ? { name: IMAGE_INPUT.pixels, shape: [BATCH_DIM, input.height, input.width, input.channels] }
    : { name: IMAGE_INPUT.embedding, shape: [BATCH_DIM, input.dim] };
}

/** The image tower of an expert as a serialized ONNX model. */
export function imageTowerOnnx(a: ExpertArchitecture, weights: ExpertWeights, options: TowerOptions = {}): Uint8Array {
  checkWeights(a, weights);
  const b = new GraphBuilder(weights);
  const input = imageInputOf(a);
  let flat: string;
  let flatSize: number;
  if (a.imageInput.kind === 'pixels') {
    const { height, width, channels } = a.imageInput;
    let x = b.op('Transpose', [input.name], { perm: [0, 3, 1, 2] });
    x = b.op('Relu', [b.conv(x, 'image/stem', a.patch, channels, a.stemChannels, { strides: [a.patch, a.patch] })]);
    let [h, w, c] = [Math.floor(height / a.patch), Math.floor(width / a.patch), a.stemChannels];
    a.convChannels.forEach((out, i) => {
      x = b.op('Relu', [b.conv(x, `image/conv${i}`, 3, c, out, { pads: [1, 1, 1, 1], strides: [1, 1] })]);
      x = b.op('AveragePool', [x], { kernel_shape: [2, 2], strides: [2, 2] });
      [h, w, c] = [Math.floor(h / 2), Math.floor(w / 2), out];
    });
    x = b.op('Transpose', [x], { perm: [0, 2, 3, 1] });
    flat = b.op('Flatten', [x], { axis: 1 });
    flatSize = h * w * c;
  } else {
    flat = input.name;
    flatSize = a.imageInput.dim;
  }
  const hidden = b.op('Relu', [b.dense(flat, 'image/hidden', flatSize, a.imageHidden)]);
  b.l2Normalize(b.dense(hidden, 'image/proj', a.imageHidden, a.projection), OUTPUT);
  return model('image_tower', b, input, a.projection, options);
}

/** The text tower of an expert as a serialized ONNX model. */
export function textTowerOnnx(a: ExpertArchitecture, weights: ExpertWeights, options: TowerOptions = {}): Uint8Array {
  checkWeights(a, weights);
  const b = new GraphBuilder(weights);
  const hidden = b.op('Relu', [b.dense(TEXT_INPUT, 'text/hidden', a.textDim, a.textHidden)]);
  b.l2Normalize(b.dense(hidden, 'text/proj', a.textHidden, a.projection), OUTPUT);
  return model('text_tower', b, { name: TEXT_INPUT, shape: [BATCH_DIM, a.textDim] }, a.projection, options);
}
