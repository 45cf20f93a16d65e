/**
 * The few layers the experts need, written so that training runs on every backend we support:
 * - dense: matMul with a custom gradient that transposes explicitly. tfjs's autograd for matMul uses
 *   transpose flags, which tfjs-backend-wasm runs ~3x slower than an explicit transpose followed by a
 *   plain matMul (ARCHITECTURE.md section 5; measured 1.2 vs 17 GFLOP/s for the forward flag).
 * - conv3x3: "same" 3x3 convolution as im2col from nine shifted slices and one dense. tfjs-backend-wasm
 *   has no Conv2DBackpropFilter kernel, so tf.conv2d cannot be trained there; slices, pads, concat and
 *   matMul all have gradients everywhere.
 * - patchConv: a non-overlapping conv (kernel = stride = patch, the ViT/ConvNeXt "patchify" stem) as a
 *   reshape/transpose and one dense; on wasm it trains ~10x faster per FLOP than any 3x3 conv here,
 *   whose slices, concat and Conv2DBackpropInput are memory-bound there.
 * All functions are pure tensor maths: no variables are created here.
 */
import * as tf from '@tensorflow/tfjs';

// customGrad's signature is variadic: (...inputs, save).
const denseOp = tf.customGrad(((x: tf.Tensor, w: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x, w]);
  return {
    value: tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
      const g = dy as tf.Tensor2D;
      return [tf.matMul(g, tf.transpose(ws)), tf.matMul(tf.transpose(xs), g)];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]);

/** x [n, in] . w [in, out] (+ b [out]). */
export function dense(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor2D {
  const y = denseOp(x, w) as tf.Tensor2D;
  return b ? tf.add(y, b) : y;
}

/** 3x3 convolution, stride 1, zero "same" padding. x [b, h, w, c], kernel [9c, f] (rows: dy, dx, c). */
export function conv3x3(x: tf.Tensor4D, kernel: tf.Tensor2D, bias: tf.Tensor1D): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const padded = tf.pad(x, [
    [0, 0],
    [1, 1],
    [1, 1],
    [0, 0],
  ]);
  const shifted: tf.Tensor4D[] = [];
  for (let dy = 0; dy < 3; dy++) for (let dx = 0; dx < 3; dx++) shifted.push(tf.slice(padded, [0, dy, dx, 0], [b, h, w, c]));
  const columns = tf.reshape(tf.concat(shifted, 3), [b * h * w, 9 * c]) as tf.Tensor2D;
  const f = kernel.shape[1];
  return tf.reshape(dense(columns, kernel, bias), [b, h, w, f]) as tf.Tensor4D;
}

/** Non-overlapping patch x patch conv (stride = patch; trailing rows/columns that do not fill a patch are dropped). */
export function patchConv(x: tf.Tensor4D, kernel: tf.Tensor2D, bias: tf.Tensor1D, patch: number): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const [ph, pw] = [Math.floor(h / patch), Math.floor(w / patch)];
  const cropped = ph * patch === h && pw * patch === w ? x : tf.slice(x, [0, 0, 0, 0], [b, ph * patch, pw * patch, c]);
  const patches = tf.reshape(tf.transpose(tf.reshape(cropped, [b, ph, patch, pw, patch, c]), [0, 1, 3, 2, 4, 5]), [b * ph * pw, patch * patch * c]) as tf.Tensor2D;
  return tf.reshape(dense(patches, kernel, bias), [b, ph, pw, kernel.shape[1]]) as tf.Tensor4D;
}

/** 2x2 average pooling, stride 2 (odd sides drop their last row/column). */
export function avgPool2(x: tf.Tensor4D): tf.Tensor4D {
  return tf.avgPool(x, 2, 2, 'valid');
}

/** Rows scaled to unit L2 norm (epsilon keeps a zero row finite). */
export function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.div(x, tf.sqrt(tf.add(tf.sum(tf.square(x), 1, true), 1e-12)));
}
