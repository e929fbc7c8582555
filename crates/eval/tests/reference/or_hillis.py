"""Reference values of tests/it/main.rs `or_hillis_matches_a_numpy_reference`.

Obuchowski–Rockette (1995) with Hillis' (2007) denominator degrees of freedom, on the
proportion of cases each reader got right in each modality, covariances by the jackknife over
cases. Run: python3 -m venv v && v/bin/pip install numpy scipy && v/bin/python or_hillis.py
(numpy 2.4.6, scipy 1.17.1 on 2026-11-29). It prints the values the test compares with.
"""
import numpy as np
from scipy import stats

UNAIDED = ["101111100101111000101111110101", "100011111111111001111011110100",
           "101111111011011000100011110101", "101101111010111000111111110110"]
AIDED = ["101111111111001110111111111101", "101111110111011000111111111111",
         "101111111111111110101111110101", "101011111111101110101111110111"]

x = np.array([[[int(c) for c in row] for row in m] for m in (UNAIDED, AIDED)], float)
t, r, n = x.shape                                  # modalities, readers, cases
theta = x.mean(axis=2)                             # figure of merit per modality and reader
jack = np.stack([np.delete(x, k, axis=2).mean(axis=2) for k in range(n)])  # n × t × r
flat = jack.reshape(n, t * r)
cov = (n - 1) / n * (flat - flat.mean(0)).T @ (flat - flat.mean(0))
pairs = {"var": [], "cov1": [], "cov2": [], "cov3": []}
for a in range(t * r):
    for b in range(t * r):
        (ta, ra), (tb, rb) = divmod(a, r), divmod(b, r)
        key = "var" if a == b else "cov1" if ra == rb else "cov2" if ta == tb else "cov3"
        pairs[key].append(cov[a, b])
var, cov1, cov2, cov3 = (np.mean(pairs[k]) for k in ("var", "cov1", "cov2", "cov3"))
ms_t = r * ((theta.mean(1) - theta.mean()) ** 2).sum() / (t - 1)
inter = theta - theta.mean(1, keepdims=True) - theta.mean(0, keepdims=True) + theta.mean()
ms_tr = (inter ** 2).sum() / ((t - 1) * (r - 1))
den = ms_tr + r * max(cov2 - cov3, 0.0)
f = ms_t / den
ddf = den ** 2 / (ms_tr ** 2 / ((t - 1) * (r - 1)))
p = stats.f.sf(f, t - 1, ddf)
diff = theta[1].mean() - theta[0].mean()
half = stats.t.ppf(0.975, ddf) * np.sqrt(2 / r * den)
for name, v in [("var", var), ("cov1", cov1), ("cov2", cov2), ("cov3", cov3), ("ms_t", ms_t),
                ("ms_tr", ms_tr), ("f", f), ("ddf", ddf), ("p_value", p), ("difference", diff),
                ("ci95", (diff - half, diff + half))]:
    print(name, tuple(map(float, v)) if isinstance(v, tuple) else float(v))
