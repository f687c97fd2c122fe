#!/usr/bin/env python3
"""sve-train and sve-decompose side by side with PyTorch / numpy on the CPU (run on demand).

    make release venv-bench data
    .venv/bin/python bench/sve.py --data data/full          # numpy + torch (requirements/bench.txt)

Same data (the real layer-5 FFN inputs of all-MiniLM-L6-v2 over BBC News), same network (residual
FFN block + LayerNorm + M heads), same hyperparameters (AdamW lr 1e-3 wd 0.05, clip 1.0, warm-up 10 %
then cosine, batch 16, same batch for all members, best validation epoch, one temperature) and the
same number of threads. The torch reference rebuilds each member's dense weight with einsum,
W_m = U diag(relu(s_m)) Vᵀ, as the public SVE code does; a factored torch variant
((x Vᵀᵀ ∘ relu(s_m)) Uᵀ) is timed too. Prints time per epoch, test accuracy/ECE and ratios.
Needs: numpy, torch; the built tools (BIN, default .build/release).
"""
import argparse, json, math, os, subprocess, sys, tempfile, time

# numpy's BLAS reads its thread count at import: give it --threads (default 1) before importing.
_t = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = _t
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples", "sve"))
from metrics import metrics  # noqa: E402

ROOT = os.path.dirname(HERE)
DEFAULT_DATA = next(d for d in (os.path.join(ROOT, "data", "full"), os.path.join(ROOT, "examples", "data")) if os.path.isdir(d))
L = "encoder.layer.5"
STACK = f"residual(linear:{L}.intermediate.dense gelu linear:{L}.output.dense) layernorm:{L}.output.LayerNorm"


def sh(cmd, env=None):
    r = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {cmd}\n{r.stderr.decode()}")
    return r


def timed(cmd, env=None, repeat=1):
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter(); sh(cmd, env); best = min(best, time.perf_counter() - t)
    return best


def fit_temperature(logits, labels):
    """Golden section on log T in [1/20, 20] of the NLL of the probability-averaged ensemble (as sve-train)."""
    def nll(lt):
        z = logits / math.exp(lt)
        z = z - z.max(-1, keepdims=True)
        p = np.exp(z); p /= p.sum(-1, keepdims=True)
        pbar = p.mean(0)
        return -np.log(np.maximum(pbar[np.arange(len(labels)), labels], 1e-300)).mean()
    a, b = math.log(0.05), math.log(20.0)
    g = (5 ** 0.5 - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(c), nll(d)
    for _ in range(60):
        if fc < fd: b, d, fd = d, c, fc; c = b - g * (b - a); fc = nll(c)
        else: a, c, fc = c, d, fd; d = a + g * (b - a); fd = nll(d)
    return math.exp((a + b) / 2)


def torch_sve(basis, x, y, split, members, epochs, seed, threads, variant):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    K = int(y.max()) + 1
    names = [f"{L}.intermediate.dense", f"{L}.output.dense"]
    U = {n: torch.tensor(basis[n + ".U"]) for n in names}
    Vt = {n: torch.tensor(basis[n + ".Vt"]) for n in names}
    S = {n: torch.tensor(basis[n + ".S"]) for n in names}
    b0 = {n: torch.tensor(basis[n + ".bias"]) for n in names}
    lnw = torch.tensor(basis[f"{L}.output.LayerNorm.weight"]); lnb = torch.tensor(basis[f"{L}.output.LayerNorm.bias"])
    s = {n: torch.nn.Parameter(S[n][None] * (1 + 0.01 * torch.randn(members, len(S[n])))) for n in names}
    b = {n: torch.nn.Parameter(b0[n][None] + 0.01 * torch.randn(members, len(b0[n]))) for n in names}
    hw = torch.nn.Parameter(0.01 * torch.randn(members, K, x.shape[1]))
    hb = torch.nn.Parameter(torch.zeros(members, K))
    params = list(s.values()) + list(b.values()) + [hw, hb]

    def lin(n, h, m):
        if variant == "einsum":
            w = torch.einsum("ok,k,ki->oi", U[n], s[n][m].clamp(min=0), Vt[n])
            return h @ w.T + b[n][m]
        return ((h @ Vt[n].T) * s[n][m].clamp(min=0)) @ U[n].T + b[n][m]

    def forward(xb):
        out = []
        for m in range(members):
            h = lin(f"{L}.output.dense", F.gelu(lin(f"{L}.intermediate.dense", xb, m)), m) + xb
            h = F.layer_norm(h, (x.shape[1],), lnw, lnb, eps=1e-12)
            out.append(h @ hw[m].T + hb[m])
        return torch.stack(out)  # M×B×K

    tr, va, te = (np.flatnonzero(split == i) for i in (0, 1, 2))
    X = torch.tensor(x); Y = torch.tensor(y)
    B = 16
    steps = math.ceil(len(tr) / B) * epochs
    warm = round(0.1 * steps)
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: (t + 1) / warm if t < warm else 0.5 * (1 + math.cos(math.pi * min(1, (t - warm) / max(1, steps - warm)))))
    g = torch.Generator().manual_seed(seed)
    best, times = None, []
    for ep in range(epochs):
        t0 = time.perf_counter()
        perm = torch.tensor(tr)[torch.randperm(len(tr), generator=g)]
        for i in range(0, len(tr), B):
            idx = perm[i:i + B]
            lg = forward(X[idx])
            loss = torch.stack([F.cross_entropy(lg[m], Y[idx]) for m in range(members)]).mean()
            opt.zero_grad(); loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step(); sched.step()
        with torch.no_grad():
            lv = forward(X[va]).double()
            p = lv.softmax(-1).mean(0)
            acc = (p.argmax(-1) == Y[va]).double().mean().item()
            nll = -p[torch.arange(len(va)), Y[va]].clamp_min(1e-300).log().mean().item()
        if best is None or acc > best[0] or (acc == best[0] and nll < best[1]):
            best = (acc, nll, [q.detach().clone() for q in params])
        times.append(time.perf_counter() - t0)
    with torch.no_grad():
        for q, v in zip(params, best[2]): q.copy_(v)
        T = fit_temperature(forward(X[va]).double().numpy(), y[va])
        lt = forward(X[te]).double().numpy() / T
    z = lt - lt.max(-1, keepdims=True); p = np.exp(z); p /= p.sum(-1, keepdims=True)
    return float(np.mean(times)), metrics(p.mean(0), y[te])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=DEFAULT_DATA,
                    help="data/full (make data) when present, else the bundled examples/data")
    ap.add_argument("--bin", default=os.path.join(HERE, "..", ".build", "release"))
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-einsum", action="store_true", help="do not run the (slow) einsum reference")
    a = ap.parse_args()
    env = dict(os.environ, PATH=os.path.abspath(a.bin) + ":" + os.environ["PATH"])
    tmp = tempfile.mkdtemp(prefix="bench-sve-")
    st = os.path.join(a.data, "minilm_layer5_ffn.safetensors")
    npz = os.path.join(a.data, "bbc_ffn.npz")
    d = np.load(npz)
    x, y, split = d["ffn_in"].astype(np.float32), d["label"].astype(np.int64), d["split"].astype(np.int64)
    np.save(f"{tmp}/x.npy", x); np.save(f"{tmp}/y.npy", y); np.save(f"{tmp}/split.npy", split)
    sh(f"tensor from npy {tmp}/x.npy --name features -o {tmp}/x.tsr && tensor from npy {tmp}/y.npy --name labels -o {tmp}/y.tsr"
       f" && tensor paste {tmp}/x.tsr {tmp}/y.tsr -o {tmp}/data.tsr && tensor from npy {tmp}/split.npy --name split -o {tmp}/split.tsr"
       f" && tensor from safetensors {st} -o {tmp}/weights.tsr", env)
    print(f"data: {npz}: {len(y)} rows ({(split == 0).sum()} train, {(split == 1).sum()} val, {(split == 2).sum()} test), "
          f"{x.shape[1]} features; M = {a.members}, {a.epochs} epochs, {a.threads} thread(s)")

    # --- sve-decompose vs numpy.linalg.svd on the same two matrices -------------------------
    t_dec = timed(f"sve-decompose {tmp}/weights.tsr --prefix {L}. -q --threads {a.threads} -o {tmp}/basis.tsr", env, repeat=3)
    sh(f"tensor to npz {tmp}/weights.tsr -o {tmp}/weights.npz && tensor to npz {tmp}/basis.tsr -o {tmp}/basis.npz", env)
    w = np.load(f"{tmp}/weights.npz")
    mats = [w[f"{L}.intermediate.dense.weight"], w[f"{L}.output.dense.weight"]]
    def np_svd(dtype):
        best = math.inf
        for _ in range(3):
            t = time.perf_counter()
            for m in mats: np.linalg.svd(m.astype(dtype), full_matrices=False)
            best = min(best, time.perf_counter() - t)
        return best
    t64, t32 = np_svd(np.float64), np_svd(np.float32)
    print(f"\nsve-decompose (2 matrices, whole process incl. reading, float64 gesdd + error check): {t_dec*1000:.0f} ms")
    print(f"numpy.linalg.svd float64 (in-process, SVD only): {t64*1000:.0f} ms   ratio numpy/sve-decompose = {t64/t_dec:.2f}")
    print(f"numpy.linalg.svd float32 (in-process, SVD only): {t32*1000:.0f} ms   ratio numpy/sve-decompose = {t32/t_dec:.2f}")

    # --- sve-train ---------------------------------------------------------------------------
    base = (f"sve-train {tmp}/data.tsr --basis {tmp}/basis.tsr --split {tmp}/split.tsr --stack '{STACK}' "
            f"--members {a.members} --seed {a.seed} --threads {a.threads}")
    t1 = timed(f"{base} --epochs 1 -o {tmp}/m1.tsr", env)
    tE = timed(f"{base} --epochs {a.epochs} -o {tmp}/model.tsr", env)
    swift_epoch = (tE - t1) / (a.epochs - 1) if a.epochs > 1 else tE
    sh(f"tensor paste {tmp}/data.tsr {tmp}/split.tsr | sve-predict --model {tmp}/model.tsr --pass labels --pass split "
       f"--threads {a.threads} | tensor to npz -o {tmp}/pred.npz", env)
    pr = np.load(f"{tmp}/pred.npz")
    te = pr["split"] == 2
    m_swift = metrics(pr["probs"][te], pr["labels"][te])
    print(f"\nsve-train: {swift_epoch:.3f} s/epoch (whole run {tE:.2f} s incl. start-up and temperature fit)  "
          f"test acc {100*m_swift['accuracy']:.2f}  ECE {100*m_swift['ece']:.2f}  NLL {m_swift['nll']:.4f}")

    basis = dict(np.load(f"{tmp}/basis.npz"))
    rows = {}
    for variant in (["factored"] if a.skip_einsum else ["einsum", "factored"]):
        te_, m = torch_sve(basis, x, y, split, a.members, a.epochs, a.seed, a.threads, variant)
        rows[variant] = (te_, m)
        print(f"torch ({variant}): {te_:.3f} s/epoch  test acc {100*m['accuracy']:.2f}  ECE {100*m['ece']:.2f}  "
              f"NLL {m['nll']:.4f}   ratio torch/sve-train = {te_/swift_epoch:.2f}")
    print(json.dumps({"swift_epoch_s": swift_epoch, "swift": m_swift, "decompose_s": t_dec, "numpy_svd64_s": t64,
                      "numpy_svd32_s": t32, **{f"torch_{k}_epoch_s": v[0] for k, v in rows.items()},
                      **{f"torch_{k}": v[1] for k, v in rows.items()}}))


if __name__ == "__main__":
    main()
