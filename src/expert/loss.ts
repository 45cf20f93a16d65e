/**
 * CLIP's symmetric InfoNCE: with logits L = s * I T^T over a batch of matching pairs, the loss is the
 * mean of the cross-entropy of each image against all texts and of each text against all images, the
 * matching pair being the target (the diagonal).
 */
import * as tf from '@tensorflow/tfjs';

export function clipLoss(logits: tf.Tensor2D): tf.Scalar {
  const n = logits.shape[0];
  const eye = tf.eye(n);
  const imageToText = tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits, 1), eye), 1)));
  const textToImage = tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(tf.transpose(logits), 1), eye), 1)));
  return tf.div(tf.add(imageToText, textToImage), 2) as tf.Scalar;
}
