package org.spectralpeft.foura.cuda;

import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.internal.FftPlans;
import org.spectralpeft.cuda.internal.StreamScratch;

/**
 * FouRA's folds on the device (DESIGN.md): r rows of length d through batched cuFFT real transforms and
 * small kernels, the device counterpart of {@code foura.cpu.FoldedFactors}. Rows are contiguous float32.
 *
 * <ul>
 * <li>{@link #fold}: the forward fold. DFT: out rows 0..r−1 = Re, rows r..2r−1 = imSign·Im of the unitary
 * DFT of each row (imSign −1 gives B̂ᵀ from Bᵀ's rows: the conjugate); DCT: the orthonormal DCT-III of each
 * row, by Makhoul's algorithm (a Hermitian pre-twiddle, a C2R, a reordering).</li>
 * <li>{@link #unfold}: its adjoint, from the gradient of the folded rows to the gradient of the rows. DFT:
 * Re(Σ_k (re_k + i·imSign·im_k)·e^{+2πi·jk/d})/√d by a C2R of the Hermitian part; DCT: the orthonormal
 * DCT-II (a reordering, an R2C, a post-twiddle).</li>
 * </ul>
 */
final class DeviceFolds {
    private final FouRAKernels kernels;
    private final FftPlans plans;

    DeviceFolds(FouRAKernels kernels, FftPlans plans) {
        this.kernels = kernels;
        this.plans = plans;
    }

    /** out (width × d) = the fold of in's r rows (r × d); see the class comment. */
    void fold(boolean dft, int r, int d, long in, long out, float imSign, StreamScratch scratch, CudaStream s) {
        long half = scratch.allocate(8L * r * (d / 2 + 1));
        if (dft) {
            plans.run(FftPlans.oneD(FftPlans.Direction.R2C, d, r, false), in, half, scratch, s);
            kernels.foldExpand(half, r, d, (float) (1 / Math.sqrt(d)), imSign, out, out + 4L * r * d, s);
        } else {
            long w = scratch.allocate(4L * r * d);
            kernels.dct3Pre(in, r, d, half, s);
            plans.run(FftPlans.oneD(FftPlans.Direction.C2R, d, r, false), half, w, scratch, s);
            kernels.dctReorder(w, r, d, false, out, s);
        }
    }

    /** The scratch {@link #unfold} takes from a reservation (its half spectra, DCT rows and cuFFT work area). */
    long unfoldFootprint(boolean dft, int r, int d) {
        long work = plans.workBytes(FftPlans.oneD(dft ? FftPlans.Direction.C2R : FftPlans.Direction.R2C, d, r, false));
        return StreamScratch.footprint(8L * r * (d / 2 + 1)) + (dft ? 0 : StreamScratch.footprint(4L * r * d))
                + (work > 0 ? StreamScratch.footprint(work) : 0);
    }

    /** out (r × d) = the adjoint fold of in (width × d); see the class comment. */
    void unfold(boolean dft, int r, int d, long in, long out, float imSign, StreamScratch scratch, CudaStream s) {
        long half = scratch.allocate(8L * r * (d / 2 + 1));
        if (dft) {
            kernels.foldHermitian(in, in + 4L * r * d, r, d, (float) (1 / Math.sqrt(d)), imSign, half, s);
            plans.run(FftPlans.oneD(FftPlans.Direction.C2R, d, r, false), half, out, scratch, s);
        } else {
            long u = scratch.allocate(4L * r * d);
            kernels.dctReorder(in, r, d, true, u, s);
            plans.run(FftPlans.oneD(FftPlans.Direction.R2C, d, r, false), u, half, scratch, s);
            kernels.dct2Post(half, r, d, out, s);
        }
    }
}
