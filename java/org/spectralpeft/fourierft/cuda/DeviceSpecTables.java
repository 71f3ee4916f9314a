package org.spectralpeft.fourierft.cuda;

import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import java.util.ArrayList;
import java.util.List;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.internal.NativeHandles;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.fourierft.SpectralGrouping;
import org.spectralpeft.fourierft.SpectrumColumns;

/**
 * A spec's groupings and gather tables in device memory, in one allocation. Fields are device addresses
 * of int (or float, for imSign) arrays.
 */
final class DeviceSpecTables implements AutoCloseable {
    record Grouping(long start, long coeff, long src) {
    }

    final int halfBins;
    /** Entries of {@link SpectrumColumns}, and its tables (the steps as float bits). */
    final int columnEntries;
    final long columnStart;
    final long columnRow;
    final long columnCoeff;
    final long columnStepCos;
    final long columnStepSin;
    /** {@link GradientColumns}: visiting order and row steps of the ∂L/∂c column analysis. */
    final long gradOrder;
    final long gradStepCos;
    final long gradStepSin;
    final long halfBinPos;
    final long halfBinStart;
    final long halfEntryCoeff;
    final Grouping forward;
    final Grouping transposed;
    final long deltaGradBin;
    final long xBin;
    final long gyBin;
    final long imSign;
    /**
     * e^{−2πi·j/L} for j &lt; L as float pairs (real, imaginary), L = {@link #twiddleLength}, then the radix-2 stages'
     * table ({@link FusedForward#twiddles}), for the block FFTs of {@code fourierft_forward_fused}; 0 where the kernel
     * does not take the layer.
     */
    final long twiddles;
    /** L: the least common multiple of d_in and d_out where the fused kernel takes both, else 0. */
    final int twiddleLength;

    private final CUdeviceptr block = new CUdeviceptr();
    private final boolean uploaded;
    private final List<int[]> parts = new ArrayList<>();
    private long words;

    /** Uploads the spec's tables. */
    DeviceSpecTables(FourierFTSpec spec) {
        this(spec, 0);
    }

    /**
     * The tables laid out from a made-up base address, nothing allocated or uploaded: for tests that
     * inspect what the launchers pass without a device ({@code KernelSignaturesTest}).
     */
    static DeviceSpecTables notUploaded(FourierFTSpec spec, long fakeBase) {
        if (fakeBase == 0) {
            throw new IllegalArgumentException("fake base address must not be 0");
        }
        return new DeviceSpecTables(spec, fakeBase);
    }

    private DeviceSpecTables(FourierFTSpec spec, long fakeBase) {
        SpectralGrouping half = spec.halfSpectrumGrouping();
        SpectralGrouping fwd = spec.forwardGrouping();
        SpectralGrouping tr = spec.transposedGrouping();
        halfBins = half.bins();
        SpectrumColumns columns = spec.halfSpectrumColumns();
        columnEntries = columns.entries();
        long oColStart = add(columns.starts());
        long oColRow = add(columns.rows());
        long oColCoeff = add(columns.coefficients());
        long oColStepCos = add(floatBits(columns.stepCosines()));
        long oColStepSin = add(floatBits(columns.stepSines()));
        GradientColumns grad = GradientColumns.of(spec);
        long oGradOrder = add(grad.order);
        long oGradStepCos = add(floatBits(grad.stepCos));
        long oGradStepSin = add(floatBits(grad.stepSin));
        long oHalfPos = add(half.positions());
        long oHalfStart = add(half.starts());
        long oHalfCoeff = add(half.entryCoefficients());
        long[] oFwd = {add(fwd.starts()), add(fwd.entryCoefficients()), add(fwd.entrySources())};
        long[] oTr = {add(tr.starts()), add(tr.entryCoefficients()), add(tr.entrySources())};
        long oDelta = add(spec.deltaGradientBins());
        long oX = add(spec.inputBins());
        long oGy = add(spec.outputGradientBins());
        long oSign = add(floatBits(spec.imaginarySigns()));
        twiddleLength = FusedForward.twiddleLength(spec.dIn(), spec.dOut());
        if (words % 2 != 0) { // the twiddles are read as float2: an 8-byte boundary
            add(new int[1]);
        }
        long oTwiddles = add(floatBits(FusedForward.twiddles(twiddleLength)));

        int[] all = new int[(int) words];
        int at = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, all, at, p.length);
            at += p.length;
        }
        parts.clear();
        uploaded = fakeBase == 0;
        if (uploaded) {
            cuMemAlloc(block, 4L * all.length);
            try {
                cuMemcpyHtoD(block, Pointer.to(all), 4L * all.length);
                // A pageable copy may return before its DMA ends; the tables are read from other streams.
                cuStreamSynchronize(CudaStream.legacyDefault().jcuda());
            } catch (RuntimeException e) {
                cuMemFree(block);
                throw e;
            }
        }
        long base = uploaded ? NativeHandles.handleOf(block) : fakeBase;
        columnStart = base + 4 * oColStart;
        columnRow = base + 4 * oColRow;
        columnCoeff = base + 4 * oColCoeff;
        columnStepCos = base + 4 * oColStepCos;
        columnStepSin = base + 4 * oColStepSin;
        gradOrder = base + 4 * oGradOrder;
        gradStepCos = base + 4 * oGradStepCos;
        gradStepSin = base + 4 * oGradStepSin;
        halfBinPos = base + 4 * oHalfPos;
        halfBinStart = base + 4 * oHalfStart;
        halfEntryCoeff = base + 4 * oHalfCoeff;
        forward = new Grouping(base + 4 * oFwd[0], base + 4 * oFwd[1], base + 4 * oFwd[2]);
        transposed = new Grouping(base + 4 * oTr[0], base + 4 * oTr[1], base + 4 * oTr[2]);
        deltaGradBin = base + 4 * oDelta;
        xBin = base + 4 * oX;
        gyBin = base + 4 * oGy;
        imSign = base + 4 * oSign;
        twiddles = twiddleLength == 0 ? 0 : base + 4 * oTwiddles;
    }

    private static int[] floatBits(float[] values) {
        int[] bits = new int[values.length];
        for (int i = 0; i < values.length; i++) {
            bits[i] = Float.floatToRawIntBits(values[i]);
        }
        return bits;
    }

    // Appends an array (at least one word, so every table has a distinct address) and returns its offset.
    private long add(int[] values) {
        long offset = words;
        parts.add(values.length == 0 ? new int[1] : values);
        words += Math.max(1, values.length);
        return offset;
    }

    @Override
    public void close() {
        if (uploaded) {
            cuMemFree(block);
        }
    }
}
