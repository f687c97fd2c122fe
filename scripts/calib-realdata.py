#!/usr/bin/env python3
"""calib-metrics on real data (docs/data.md), side by side with the reference libraries.

    .venv/bin/python scripts/calib-realdata.py [--data data/full] [--bin .build/debug]

(after `make venv-bench data`: scikit-learn, torchmetrics, netcal and the full dataset)

Uses the embeddings another script derived from BBC News, Lee and Pang-Lee polarity
(bbc_<model>.npz, lee_docs_<model>.npy, lee_pairs.npz, polarity_<model>.npz):
  1. classification: a logistic regression per embedding model on BBC bodies (split 0 = train),
     probabilities on split 1; calib-metrics in each mode vs sklearn / torchmetrics / netcal;
  2. the three models as a 3-member ensemble, with the 200 polarity sentences as OOD rows;
  3. similarity: cosine of Lee document pairs vs the human scores (scipy);
  4. retrieval: BBC title -> body, top 10 by cosine, relevant = the article itself.
"""
import argparse
import json
import pathlib
import subprocess
import tempfile

import numpy as np
import scipy.stats
import sklearn.calibration
import sklearn.linear_model
import sklearn.metrics
import torch
from torchmetrics.functional.classification import multiclass_calibration_error
import netcal.metrics

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT / "data/full"))
    ap.add_argument("--bin", default=str(ROOT / ".build/debug"))
    args = ap.parse_args()
    data, bindir = pathlib.Path(args.data), pathlib.Path(args.bin)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="calib-real-"))

    def tsr(name, array, tensor_name):
        path = tmp / f"{name}.npy"
        np.save(path, array)
        out = tmp / f"{name}.tsr"
        subprocess.run([str(bindir / "tensor"), "from", "npy", str(path), "--name", tensor_name, "-o", str(out)], check=True)
        return out

    def cm(*a):
        r = subprocess.run([str(bindir / "calib-metrics"), *map(str, a)], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(r.stderr)
        return r.stdout

    models = ["minilm", "paraphrase", "e5"]
    members, members_ood = [], []
    for m in models:
        z = np.load(data / f"bbc_{m}.npz")
        x, y, split = z["body"], z["label"], z["split"]
        clf = sklearn.linear_model.LogisticRegression(C=0.5, max_iter=2000).fit(x[split == 0], y[split == 0])
        p = clf.predict_proba(x[split == 1])
        members.append(p)
        members_ood.append(clf.predict_proba(np.load(data / f"polarity_{m}.npz")["embedding"]))
        yt = y[split == 1]
        probs, labels = tsr(f"probs_{m}", p.astype(np.float64), "probs"), tsr(f"labels_{m}", yt, "labels")
        out = {mode: json.loads(cm("--json", "--mode", mode, "--labels", labels, probs))
               for mode in ("default", "torchmetrics", "netcal")}
        k = p.shape[1]
        conf, hit = p.max(1), (p.argmax(1) == yt).astype(int)
        pt, pp = sklearn.calibration.calibration_curve(hit, conf, n_bins=15)
        cnt = np.bincount(np.searchsorted(np.linspace(0, 1, 16)[1:-1], conf), minlength=15)
        sk_ece = float(np.sum(cnt[cnt > 0] / len(conf) * np.abs(pt - pp)))
        print(f"\n== BBC News, {m} embeddings, logistic regression: {len(yt)} test rows, {k} classes")
        print(cm("--labels", labels, "--reliability-svg", tmp / f"rel_{m}.svg", probs), end="")
        print(f"reference: sklearn-curve ECE {sk_ece:.6f} (ours {out['default']['calibration']['ece']:.6f}); "
              f"torchmetrics ECE {float(multiclass_calibration_error(torch.tensor(p), torch.tensor(yt), num_classes=k, n_bins=15)):.6f} "
              f"(ours {out['torchmetrics']['calibration']['ece']:.6f}); netcal ECE {netcal.metrics.ECE(bins=15).measure(p, yt):.6f} "
              f"(ours {out['netcal']['calibration']['ece']:.6f}); log_loss {sklearn.metrics.log_loss(yt, p):.6f} "
              f"(ours {out['default']['nll']:.6f}); brier {sklearn.metrics.brier_score_loss(yt, p, labels=list(range(k)), scale_by_half=False):.6f} "
              f"(ours {out['default']['brier']:.6f})")

    # Ensemble of the three models, polarity sentences as OOD rows.
    mp = np.concatenate([np.stack(members, 1), np.stack(members_ood, 1)]).astype(np.float32)
    yt = np.load(data / "bbc_minilm.npz")["label"][np.load(data / "bbc_minilm.npz")["split"] == 1]
    labels = np.concatenate([yt, -np.ones(len(members_ood[0]), dtype=np.int64)])
    ood = np.concatenate([np.zeros(len(yt), dtype=np.int64), np.ones(len(members_ood[0]), dtype=np.int64)])
    mpf, lf, of = tsr("member_probs", mp, "member_probs"), tsr("ens_labels", labels, "labels"), tsr("ood", ood, "ood")
    print(f"\n== Ensemble of {len(models)} (minilm, paraphrase, e5) on BBC test, 200 polarity sentences as OOD")
    print(cm("--labels", lf, "--ood", of, "--bootstrap", 200, "--seed", 1, mpf), end="")
    mean = mp.astype(np.float64).mean(1)
    H = scipy.stats.entropy(mean, axis=1)
    print(f"reference: AUROC(entropy) {sklearn.metrics.roc_auc_score(ood, H):.6f}, "
          f"AUROC(max prob) {sklearn.metrics.roc_auc_score(ood, -mean.max(1)):.6f}")

    # Similarity: Lee pairs.
    pairs = np.load(data / "lee_pairs.npz")
    print("\n== Lee document pairs: cosine vs human scores (1225 pairs)")
    for m in models:
        d = np.load(data / f"lee_docs_{m}.npy").astype(np.float64)
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        cos = np.sum(d[pairs["i"]] * d[pairs["j"]], axis=1)
        s, g = tsr(f"lee_scores_{m}", cos, "scores"), tsr("lee_gold", pairs["score"], "gold")
        print(f"-- {m}")
        print(cm("--gold", g, s), end="")
        print(f"reference: scipy spearman {scipy.stats.spearmanr(cos, pairs['score']).statistic:.6f}, "
              f"pearson {scipy.stats.pearsonr(cos, pairs['score']).statistic:.6f}")

    # Retrieval: BBC title -> body.
    z = np.load(data / "bbc_minilm.npz")
    t = z["title"] / np.linalg.norm(z["title"], axis=1, keepdims=True)
    b = z["body"] / np.linalg.norm(z["body"], axis=1, keepdims=True)
    top = np.argsort(-(t @ b.T), axis=1, kind="stable")[:, :10]
    idx, rel = tsr("indices", top.astype(np.int64), "indices"), tsr("relevant", np.arange(len(t), dtype=np.int64), "relevant")
    print(f"\n== BBC title -> body retrieval, minilm, {len(t)} queries, top 10")
    print(cm("--relevant", rel, "--k", "1,5,10", idx), end="")
    ranks = np.array([np.nonzero(top[q] == q)[0][0] + 1 if q in top[q] else 0 for q in range(len(t))])
    mrr = np.mean([1 / r if r else 0 for r in ranks])
    print(f"reference: recall@1 {np.mean(ranks == 1):.6f}, recall@10 {np.mean(ranks > 0):.6f}, MRR {mrr:.6f}")
    print(f"\n(files in {tmp})")


if __name__ == "__main__":
    main()
