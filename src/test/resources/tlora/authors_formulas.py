#!/usr/bin/env python3
"""Expected values for a TLoRA (marcocst/PEFTDiff TTMLoRALinearLayer) port.

numpy only, float64.  Follows the einsum formulas of
subject-driven-generation/utils/attention_processor.py:
  ttm_to_matrix  : '...mn, ...ijnt->...ijmt' + moveaxis(2d -> d) + trace '...ii->...'
  ttv_to_matrix  : '...mn, ...int->...imt'   + trace '...ii->...'
  seq_kronecker  : kron(kron(A1, A2), ...)
  forward        : W' = W0 @ T + s * Delta ;  y = F.linear(x, W', b) = x @ W'.T + b
                   s = alpha / sqrt(rank)  (use_rslora=True, the only value used)

Tiny case: d_in = 6 = [2, 3], d_out = 6 = [3, 2] (deliberately different
factorisation so index-order bugs show up), R = 2 for the transform and for
every residual, 2 tokens.  Inputs are seeded random numbers rounded to one
decimal so a Java test can type them literally.  Every array is printed
flattened in row-major (C) order together with its shape.

Three-factor case, appended after it with every name prefixed "[3 factors] ":
d_in = 12 = [2, 3, 2], d_out = 12 = [3, 2, 2], transform ring rank R = 2
(and the Kronecker form), residual rank r = 3 (s = alpha/sqrt(3)), 3 tokens.
Cores 0 and 2 of the input side have the same shape, so an implementation
that applies the cores (or reads a multi-index's digits) in another order
still accepts the arrays and only the values tell; two factors cannot show
that.  With three cores ttm_to_matrix's moveaxis also runs twice, the second
time moving the new row digit past two earlier column digits.

Independent loop-based checks (explicit trace of the product of core slices)
are asserted, so the printed numbers also pin down the index conventions.
"""
import math
import numpy as np

np.set_printoptions(precision=17)


# ---- the authors' formulas, as einsum contractions ----------------------
def ttm_to_matrix(cores, flatten=True):
    out = cores[0]
    row, col = out.shape[0], out.shape[1]
    for d in range(1, len(cores)):
        out = np.einsum('...mn, ...ijnt->...ijmt', out, cores[d])
        out = np.moveaxis(out, 2 * d, d)
        row *= cores[d].shape[0]
        col *= cores[d].shape[1]
    out = np.einsum('...ii-> ...', out)
    return out.reshape(row, col) if flatten else out


def ttv_to_matrix(cores, flatten=True):
    out = cores[0]
    for d in range(1, len(cores)):
        out = np.einsum('...mn, ...int->...imt', out, cores[d])
    out = np.einsum('...ii-> ...', out)
    return out.reshape(-1) if flatten else out


def seq_kronecker(cores):
    out = cores[0]
    for d in range(1, len(cores)):
        out = np.kron(out, cores[d])
    return out


# ---- independent reference (explicit loops, C-order digit expansion) --------
def digits(idx, shape):
    """row-major: first factor is the most significant digit"""
    return list(np.unravel_index(idx, shape))


def ref_trm(cores, rows_shape, cols_shape):
    """M[(a1..aD),(b1..bD)] = trace(C1[a1,b1] @ C2[a2,b2] @ ... @ CD[aD,bD])"""
    P, Q = math.prod(rows_shape), math.prod(cols_shape)
    M = np.zeros((P, Q))
    for p in range(P):
        a = digits(p, rows_shape)
        for q in range(Q):
            b = digits(q, cols_shape)
            prod = np.eye(cores[0].shape[2])
            for d, c in enumerate(cores):
                prod = prod @ c[a[d], b[d]]
            M[p, q] = np.trace(prod)
    return M


def ref_tr(out_cores, in_cores, out_shape, in_shape):
    """D[(j..),(i..)] = trace(G1[j1]..GD[jD] @ H1[i1]..HD'[iD'])"""
    P, Q = math.prod(out_shape), math.prod(in_shape)
    M = np.zeros((P, Q))
    for p in range(P):
        j = digits(p, out_shape)
        for q in range(Q):
            i = digits(q, in_shape)
            prod = np.eye(out_cores[0].shape[1])
            for d, g in enumerate(out_cores):
                prod = prod @ g[j[d]]
            for d, h in enumerate(in_cores):
                prod = prod @ h[i[d]]
            M[p, q] = np.trace(prod)
    return M


# ---- printing --------------------------------------------------------------
def show(name, a):
    a = np.asarray(a, dtype=np.float64)
    flat = ", ".join(repr(float(v)) for v in a.reshape(-1))
    print(f"{name} shape={tuple(a.shape)} = [{flat}]")


def rnd(rng, *shape):
    return np.round(rng.uniform(-1.0, 1.0, size=shape), 1) + 0.0  # +0.0 turns -0.0 into 0.0


def emit(rng, IN, OUT, R, RANK, ALPHA, TOKENS, prefix=""):
    """Draws one case's inputs, checks them against the loop references and prints inputs and results, every
    name preceded by prefix.  R is the transform's ring rank, RANK the residual's (and s = alpha/sqrt(RANK))."""
    din, dout = math.prod(IN), math.prod(OUT)
    s = ALPHA / math.sqrt(RANK)                  # rsLoRA scaling, rank = residual rank

    def out(name, a):
        show(prefix + name, a)

    # base layer (torch Linear layout: weight is out x in)
    W0 = rnd(rng, dout, din)
    b = rnd(rng, dout)
    x = rnd(rng, TOKENS, din)
    # transform cores, TR-matrix form (transform_rank = R): (I_d, I_d, R, R)
    A = [rnd(rng, I, I, R, R) for I in IN]
    # transform cores, Kronecker form (transform_rank = 1): (I_d, I_d)
    K = [rnd(rng, I, I) for I in IN]
    # LoRA residual: lora_B (out, r), lora_A (r, in)
    lB, lA = rnd(rng, dout, RANK), rnd(rng, RANK, din)
    # TR ('ttv') residual: out cores (J_d, r, r) then in cores (I_d, r, r)
    G = [rnd(rng, J, RANK, RANK) for J in OUT]
    H = [rnd(rng, I, RANK, RANK) for I in IN]
    # TTM residual: (J_d, I_d, r, r)
    M = [rnd(rng, J, I, RANK, RANK) for J, I in zip(OUT, IN)]

    print("# ---- inputs (row-major flattening) ----")
    out("W0", W0); out("bias", b); out("x", x)
    for d, a in enumerate(A): out(f"transform_core.{d} (TR, R={R})", a)
    for d, k in enumerate(K): out(f"transform_core.{d} (Kronecker, R=1)", k)
    out("lora_B", lB); out("lora_A", lA)
    for d, g in enumerate(G + H): out(f"ttv_core.{d}" + (" (out)" if d < len(G) else " (in)"), g)
    for d, m in enumerate(M): out(f"ttm_core.{d}", m)

    # ---- transforms ----
    T_tr = ttm_to_matrix(A)
    T_kr = seq_kronecker(K)
    assert np.allclose(T_tr, ref_trm(A, IN, IN))
    assert np.allclose(T_kr, ref_trm([k[:, :, None, None] for k in K], IN, IN))

    # identity initialisation check: every R x R slice pair (a,b) of core d = I/R
    A0 = [np.stack([np.eye(I) for _ in range(R * R)], -1).reshape(I, I, R, R) / R for I in IN]
    assert np.allclose(ttm_to_matrix(A0), np.eye(din))

    # ---- residuals ----
    D_lora = lB @ lA
    D_ttv = ttv_to_matrix(G + H, flatten=False).reshape(dout, din)
    D_ttm = ttm_to_matrix(M, flatten=True)
    assert np.allclose(D_ttv, ref_tr(G, H, OUT, IN))
    assert np.allclose(D_ttm, ref_trm(M, OUT, IN))
    # zero-init first residual core => Delta == 0
    assert np.allclose(ttv_to_matrix([np.zeros_like(G[0])] + G[1:] + H, flatten=False), 0)
    assert np.allclose(ttm_to_matrix([np.zeros_like(M[0])] + M[1:]), 0)

    print("# ---- derived ----")
    out(f"T_tr = ttm_to_matrix(transform_core R={R})", T_tr)
    out("T_kron = kron(core0, core1)" if len(IN) == 2 else "T_kron = kron(core0, core1, ...)", T_kr)
    out("Delta_lora = lora_B @ lora_A", D_lora)
    out("Delta_ttv", D_ttv)
    out("Delta_ttm", D_ttm)

    for tname, T in (("T_tr", T_tr), ("T_kron", T_kr)):
        for dname, D in (("lora", D_lora), ("ttv", D_ttv), ("ttm", D_ttm)):
            Wp = W0 @ T + s * D
            y = x @ Wp.T + b
            # same thing in "input-side" form: y = W0 (T x) + s*Delta x + b
            assert np.allclose(y, (T @ x.T).T @ W0.T + s * x @ D.T + b)
            out(f"W'[{tname},{dname}] = W0@T + s*Delta", Wp)
            out(f"y[{tname},{dname}] = x@W'^T + b", y)
    # identity transform + zero residual = base layer
    assert np.allclose(x @ (W0 @ np.eye(din) + s * 0).T + b, x @ W0.T + b)
    out("y_base = x@W0^T + b", x @ W0.T + b)


def main():
    rng = np.random.default_rng(20250101)
    IN, OUT, R, ALPHA = [2, 3], [3, 2], 2, 1.5
    s = ALPHA / math.sqrt(R)
    print(f"# d_in={math.prod(IN)} in_shape={IN}  d_out={math.prod(OUT)} out_shape={OUT}  R={R}  alpha={ALPHA}"
          f"  s=alpha/sqrt(R)={s!r}")
    emit(rng, IN, OUT, R, R, ALPHA, 2)
    print("# all consistency asserts passed")

    # Three factors, the first and last of each side equal in size, so that a permutation of the cores (or of a
    # multi-index's digits) keeps every shape valid and shows only in the values.  The residual's rank differs
    # from the transform's so that the two cannot be confused.  Appended: the lines above stay as they were.
    rng = np.random.default_rng(20250103)
    IN, OUT, R, RANK, ALPHA, TOKENS = [2, 3, 2], [3, 2, 2], 2, 3, 1.5, 3
    s = ALPHA / math.sqrt(RANK)
    print(f"# [3 factors] d_in={math.prod(IN)} in_shape={IN}  d_out={math.prod(OUT)} out_shape={OUT}  R={R}"
          f"  r={RANK}  alpha={ALPHA}  s=alpha/sqrt(r)={s!r}  tokens={TOKENS}")
    emit(rng, IN, OUT, R, RANK, ALPHA, TOKENS, prefix="[3 factors] ")
    print("# [3 factors] all consistency asserts passed")


if __name__ == "__main__":
    main()
