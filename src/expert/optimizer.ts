/**
 * AdamW (Loshchilov & Hutter): Adam moments with weight decay decoupled from the gradient, applied to
 * weight matrices only; and the cosine learning-rate schedule with linear warmup. The optimizer state
 * is explicit (moments per parameter and the step count) so that a checkpoint can save and resume it.
 */
import * as tf from '@tensorflow/tfjs';

export interface AdamWSettings {
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
}

export interface AdamWState {
  /** Updates applied so far. */
  step: number;
  m: Map<string, tf.Variable>;
  v: Map<string, tf.Variable>;
}

export function createAdamWState(params: ReadonlyMap<string, tf.Variable>): AdamWState {
  const zeros = (v: tf.Variable) => tf.variable(tf.zerosLike(v), false);
  return {
    step: 0,
    m: new Map([...params].map(([name, v]) => [name, zeros(v)])),
    v: new Map([...params].map(([name, v]) => [name, zeros(v)])),
  };
}

export function disposeAdamWState(state: AdamWState): void {
  for (const t of [...state.m.values(), ...state.v.values()]) t.dispose();
}

/** One AdamW update of `params` from `grads` at learning rate `lr`; mutates the variables and the state. */
export function adamWStep({
  params,
  grads,
  state,
  lr,
  settings,
  decayed,
}: {
  params: ReadonlyMap<string, tf.Variable>;
  grads: Record<string, tf.Tensor>;
  state: AdamWState;
  lr: number;
  settings: AdamWSettings;
  decayed: ReadonlySet<string>;
}): void {
  const { beta1, beta2, epsilon, weightDecay } = settings;
  state.step += 1;
  const c1 = 1 - beta1 ** state.step;
  const c2 = 1 - beta2 ** state.step;
  tf.tidy(() => {
    for (const [name, param] of params) {
      const g = grads[name];
      if (!g) continue;
      const m = state.m.get(name)!;
      const v = state.v.get(name)!;
      const mNext = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
      const vNext = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
      m.assign(mNext);
      v.assign(vNext);
      let update = tf.div(tf.div(mNext, c1), tf.add(tf.sqrt(tf.div(vNext, c2)), epsilon));
      if (weightDecay > 0 && decayed.has(name)) update = tf.add(update, tf.mul(param, weightDecay));
      param.assign(tf.sub(param, tf.mul(update, lr)));
    }
  });
}

/** Linear warmup to `base` over `warmup` steps, then cosine decay to 0 at `total`. */
export function cosineLearningRate({ step, total, warmup, base }: { step: number; total: number; warmup: number; base: number }): number {
  if (warmup > 0 && step < warmup) return (base * (step + 1)) / warmup;
  const span = Math.max(1, total - warmup);
  const progress = Math.min(1, Math.max(0, (step - warmup) / span));
  return base * 0.5 * (1 + Math.cos(Math.PI * progress));
}
