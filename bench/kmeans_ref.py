"""Reference k-means for bench/kmeans.ts: numpy Lloyd with the same data, the same initial centers and
the same iteration structure (E step on the seeds, then `iterations` x (M step, E step)), and scikit-learn's
KMeans (plain Lloyd) from the same seeds when it is installed. Prints one JSON object on stdout.

Usage: kmeans_ref.py --points P.f32 --init C.f32 --n N --dim D --k K --iterations I --mode spherical|plain
"""
import argparse
import json
import sys
import time

import numpy as np


def assign(X, xn, C, batch=8192):
    """Nearest center by ||x||^2 - 2 x.c + ||c||^2, batched like the TypeScript side (one matmul per batch)."""
    cn = (C * C).sum(1)
    n = X.shape[0]
    labels = np.empty(n, np.int64)
    d2 = np.empty(n, np.float32)
    for s in range(0, n, batch):
        e = min(n, s + batch)
        D = X[s:e] @ C.T
        D *= -2
        D += cn
        idx = D.argmin(1)
        labels[s:e] = idx
        d2[s:e] = np.maximum(D[np.arange(e - s), idx] + xn[s:e], 0)
    return labels, d2


def update(X, labels, d2, k, spherical):
    """Means of the clusters (float64 sums); empty clusters re-seeded at the farthest points."""
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels, minlength=k)
    sums = np.zeros((k, X.shape[1]), np.float64)
    nonempty = np.flatnonzero(counts)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[nonempty]
    sums[nonempty] = np.add.reduceat(X[order].astype(np.float64), starts, axis=0)
    C = np.zeros_like(sums)
    C[nonempty] = sums[nonempty] / counts[nonempty, None]
    empty = list(np.flatnonzero(counts == 0))
    if spherical:
        norms = np.linalg.norm(C, axis=1)
        zero = [c for c in nonempty if norms[c] == 0]
        C[nonempty] /= np.where(norms[nonempty] > 0, norms[nonempty], 1)[:, None]
        empty += zero
    if empty:
        far = np.argsort(-d2, kind="stable")[: len(empty)]
        C[empty] = X[far]
    return C.astype(np.float32)


def numpy_lloyd(X, C0, iterations, spherical):
    xn = (X * X).sum(1)
    C = C0.copy()
    t = time.perf_counter()
    labels, d2 = assign(X, xn, C)
    done = 0
    for _ in range(iterations):
        C = update(X, labels, d2, C.shape[0], spherical)
        labels, d2 = assign(X, xn, C)
        done += 1
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "iterations": done, "inertia": float(d2.sum(dtype=np.float64))}


def sklearn_lloyd(X, C0, iterations):
    try:
        from sklearn.cluster import KMeans
        import sklearn
    except ImportError:
        return None
    km = KMeans(n_clusters=C0.shape[0], init=C0, n_init=1, max_iter=iterations, tol=0.0, algorithm="lloyd")
    t = time.perf_counter()
    km.fit(X)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "iterations": int(km.n_iter_), "inertia": float(km.inertia_), "version": sklearn.__version__}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--points", required=True)
    p.add_argument("--init", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--dim", type=int, required=True)
    p.add_argument("--k", type=int, required=True)
    p.add_argument("--iterations", type=int, required=True)
    p.add_argument("--mode", choices=["spherical", "plain"], required=True)
    a = p.parse_args()
    X = np.fromfile(a.points, dtype="<f4").reshape(a.n, a.dim)
    C0 = np.fromfile(a.init, dtype="<f4").reshape(a.k, a.dim)
    out = {"numpy_version": np.__version__, "numpy": numpy_lloyd(X, C0, a.iterations, a.mode == "spherical")}
    out["sklearn"] = sklearn_lloyd(X, C0, a.iterations)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
