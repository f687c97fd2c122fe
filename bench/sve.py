#!/usr/bin/env python3
"""sve-train, sve-predict and sve-decompose side by side with PyTorch / numpy on the CPU (run on demand).

    make release venv-bench
    .venv/bin/python bench/sve.py --threads 2 --batch 16,256 --rows 16000 --skip-einsum

Same data (the real layer-5 FFN inputs of all-MiniLM-L6-v2 over BBC News: data/full after `make data`,
else the bundled examples/data; --rows N repeats its rows for a set large enough to time large
batches), same network (residual FFN block + LayerNorm + M heads), same hyperparameters (AdamW lr 1e-3
wd 0.05, clip 1.0, warm-up 10 % then cosine, --batch, the same batch for all members, best validation
epoch, one temperature) and the same number of threads. Three PyTorch versions of the network:
  einsum    each member's dense weight rebuilt, W_m = U diag(relu(s_m)) Vᵀ, as the public SVE code does
  factored  ((x V) ∘ relu(s_m)) Uᵀ, the members one after the other
  batched   the same with the members on a leading axis (x V shared, then batched products), the
            fastest way to write it in PyTorch and the peer the summary compares with
sve-train's time per epoch is the difference of an --epochs E and an --epochs 1 run over E - 1 (each
the median of --runs), so that start-up and temperature fitting cancel; PyTorch's is its mean epoch
(validation included in both). Prediction: sve-predict's whole process over every row (reading and
writing streams included) against PyTorch's forward and entropy terms over the same rows, in memory.
Needs: numpy, torch; the built tools (BIN, default .build/release).
"""
import argparse, json, math, os, shutil, subprocess, sys, tempfile, time

# numpy's BLAS reads its thread count at import: give it --threads (default 1) before importing.
_t = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = _t
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples", "sve"))
from metrics import metrics  # noqa: E402
sys.path.insert(0, HERE)
from summary import bench_result  # noqa: E402

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


def median_time(cmd, env, runs):
    ts = []
    for _ in range(runs):
        t = time.perf_counter(); sh(cmd, env); ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]


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


def torch_sve(basis, x, y, split, members, epochs, seed, threads, variant, batch=16):
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

    def forward_batched(xb):
        # The members on a leading axis (M×B×·): the first layer's x·V is shared by every member, the
        # rest are batched products (torch.matmul broadcasts to bmm), as one would write it for speed.
        n1, n2 = names
        z = (xb @ Vt[n1].T)[None] * s[n1].clamp(min=0)[:, None, :]               # M×B×r1
        h = F.gelu(z @ U[n1].T + b[n1][:, None, :])                              # M×B×1536
        h = ((h @ Vt[n2].T) * s[n2].clamp(min=0)[:, None, :]) @ U[n2].T + b[n2][:, None, :] + xb[None]
        h = F.layer_norm(h, (x.shape[1],), lnw, lnb, eps=1e-12)
        return torch.baddbmm(hb[:, None, :], h, hw.transpose(1, 2))             # M×B×K

    def forward(xb):
        if variant == "batched":
            return forward_batched(xb)
        out = []
        for m in range(members):
            h = lin(f"{L}.output.dense", F.gelu(lin(f"{L}.intermediate.dense", xb, m)), m) + xb
            h = F.layer_norm(h, (x.shape[1],), lnw, lnb, eps=1e-12)
            out.append(h @ hw[m].T + hb[m])
        return torch.stack(out)  # M×B×K

    tr, va, te = (np.flatnonzero(split == i) for i in (0, 1, 2))
    X = torch.tensor(x); Y = torch.tensor(y)
    B = batch
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
            loss = F.cross_entropy(lg.reshape(-1, lg.shape[-1]), Y[idx].repeat(members))  # mean over members and rows
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
        # Prediction of every row, as sve-predict does it (data already in memory): the members'
        # probabilities, their mean, entropy, expected entropy and mutual information, 1024 rows a time;
        # the median of three passes, as sve-predict's time is the median of its runs.
        passes = []
        for _ in range(3):
            t0 = time.perf_counter()
            for i in range(0, len(X), 1024):
                pm = (forward(X[i:i + 1024]) / T).softmax(-1)
                pbar = pm.mean(0)
                ent = -(pbar * pbar.clamp_min(1e-30).log()).sum(-1)
                exp_ent = -(pm * pm.clamp_min(1e-30).log()).sum(-1).mean(0)
                _ = ent - exp_ent
            passes.append(time.perf_counter() - t0)
        t_pred = sorted(passes)[1]
    z = lt - lt.max(-1, keepdims=True); p = np.exp(z); p /= p.sum(-1, keepdims=True)
    return float(np.mean(times)), metrics(p.mean(0), y[te]), t_pred


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
    ap.add_argument("--batch", default="16", help="mini-batch sizes, comma-separated (e.g. 16,256)")
    ap.add_argument("--rows", type=int, default=0,
                    help="repeat the rows (every split) until there are at least N, for a set large enough to time "
                         "large batches: the time per row does not depend on the values (the accuracy of a repeated "
                         "set is not a measurement)")
    ap.add_argument("--runs", type=int, default=3, help="sve-train/sve-predict timings: median of this many")
    a = ap.parse_args()
    env = dict(os.environ, PATH=os.path.abspath(a.bin) + ":" + os.environ["PATH"])
    tmp = tempfile.mkdtemp(prefix="bench-sve-")
    st = os.path.join(a.data, "minilm_layer5_ffn.safetensors")
    npz = os.path.join(a.data, "bbc_ffn.npz")
    d = np.load(npz)
    x, y, split = d["ffn_in"].astype(np.float32), d["label"].astype(np.int64), d["split"].astype(np.int64)
    repeat = max(1, -(-a.rows // len(y)))
    if repeat > 1:
        x, y, split = np.tile(x, (repeat, 1)), np.tile(y, repeat), np.tile(split, repeat)
    np.save(f"{tmp}/x.npy", x); np.save(f"{tmp}/y.npy", y); np.save(f"{tmp}/split.npy", split)
    sh(f"tensor from npy {tmp}/x.npy --name features -o {tmp}/x.tsr && tensor from npy {tmp}/y.npy --name labels -o {tmp}/y.tsr"
       f" && tensor paste {tmp}/x.tsr {tmp}/y.tsr -o {tmp}/data.tsr && tensor from npy {tmp}/split.npy --name split -o {tmp}/split.tsr"
       f" && tensor from safetensors {st} -o {tmp}/weights.tsr", env)
    print(f"data: {npz}{f' repeated {repeat}x' if repeat > 1 else ''}: {len(y)} rows ({(split == 0).sum()} train, "
          f"{(split == 1).sum()} val, {(split == 2).sum()} test), "
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

    basis = dict(np.load(f"{tmp}/basis.npz"))
    out = {"decompose_s": t_dec, "numpy_svd64_s": t64, "numpy_svd32_s": t32}
    batches = [int(b) for b in a.batch.split(",")]
    for B in batches:
        # --- sve-train: time per epoch = (E-epoch run - 1-epoch run) / (E - 1), each the median of --runs
        base = (f"sve-train {tmp}/data.tsr --basis {tmp}/basis.tsr --split {tmp}/split.tsr --stack '{STACK}' "
                f"--members {a.members} --seed {a.seed} --threads {a.threads} --batch-size {B}")
        t1 = median_time(f"{base} --epochs 1 -o {tmp}/m1.tsr", env, a.runs)
        tE = median_time(f"{base} --epochs {a.epochs} -o {tmp}/model.tsr", env, a.runs)
        swift_epoch = (tE - t1) / (a.epochs - 1) if a.epochs > 1 else tE
        predict = (f"tensor paste {tmp}/data.tsr {tmp}/split.tsr | sve-predict --model {tmp}/model.tsr --pass labels "
                   f"--pass split --threads {a.threads} > {tmp}/pred.tsr")
        t_pred = median_time(predict, env, a.runs)
        sh(f"tensor to npz {tmp}/pred.tsr -o {tmp}/pred.npz", env)
        pr = np.load(f"{tmp}/pred.npz")
        te = pr["split"] == 2
        m_swift = metrics(pr["probs"][te], pr["labels"][te])
        print(f"\nbatch {B}: sve-train {swift_epoch:.3f} s/epoch (whole run {tE:.2f} s incl. start-up and temperature fit)  "
              f"test acc {100*m_swift['accuracy']:.2f}  ECE {100*m_swift['ece']:.2f}  NLL {m_swift['nll']:.4f}")
        print(f"  sve-predict, all {len(y)} rows (whole process, reading the stream included): {t_pred:.3f} s")
        row = {"batch": B, "swift_epoch_s": swift_epoch, "swift_predict_s": t_pred, "swift": m_swift}
        for variant in (["factored", "batched"] if a.skip_einsum else ["einsum", "factored", "batched"]):
            te_, m, tp = torch_sve(basis, x, y, split, a.members, a.epochs, a.seed, a.threads, variant, batch=B)
            row[f"torch_{variant}_epoch_s"], row[f"torch_{variant}_predict_s"], row[f"torch_{variant}"] = te_, tp, m
            print(f"  torch ({variant}): {te_:.3f} s/epoch  test acc {100*m['accuracy']:.2f}  ECE {100*m['ece']:.2f}  "
                  f"NLL {m['nll']:.4f}   ratio torch/sve-train = {te_/swift_epoch:.2f}; predict {tp:.3f} s "
                  f"(in memory), ratio torch/sve-predict = {tp/t_pred:.2f}")
            if variant == "batched":
                bench_result("sve-train", f"epoch, batch {B}, M = {a.members}, {len(y)} rows, {a.threads} thr, vs torch members batched",
                             swift_epoch, te_)
                # sve-predict's work does not depend on the batch the model was trained with: one
                # summary line per M (the model of the first batch size), not one per batch size.
                if B == batches[0]:
                    bench_result("sve-predict", f"{len(y)} rows, M = {a.members}, {a.threads} thr, vs torch members batched (in memory)",
                                 t_pred, tp)
        out[f"batch_{B}"] = row
    print(json.dumps(out))
    shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
