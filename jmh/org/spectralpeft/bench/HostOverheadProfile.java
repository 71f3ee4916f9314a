package org.spectralpeft.bench;

import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuModuleUnload;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import jcuda.Pointer;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import org.spectralpeft.Backends;
import org.spectralpeft.SystemProperty;
import org.spectralpeft.core.DType;
import org.spectralpeft.cuda.CudaContext;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.cuda.internal.FftPlans;
import org.spectralpeft.cuda.internal.KernelModule;
import org.spectralpeft.cuda.internal.StreamScratch;
import org.spectralpeft.foura.FouRAFactors;
import org.spectralpeft.foura.FouRASpec;
import org.spectralpeft.foura.cuda.CudaFouRA;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.fourierft.cuda.CudaFourierFT;

/**
 * What the host spends per driver or library call, on the machine at hand: kernel launches with JCuda's usual
 * argument marshaling (a {@code Pointer} per argument) against the library's argument block
 * ({@code KernelModule.launch}), a context switch, an idle synchronization, a launch's round trip, stream-ordered
 * allocation, a small cuBLAS SGEMM and cuFFT transform, the small-T forwards of FouRA and FourierFT (FourierFT's on
 * its cuFFT route and through its fused kernel), and FouRA's backward at T = 1 with either transform. It splits the "host and gaps" of
 * the stage profiles into their calls.
 *
 * <p>Each figure: the median over 9 rounds of the time to issue a batch of calls (64 launches, or 16 library
 * calls or forwards), divided by the batch; the stream is synchronized between rounds, outside the timing, so the
 * queue never fills. "+ sync" rows time each call with its own synchronization.
 *
 * <p>usage: {@code HostOverheadProfile [REPORT.md]} (default host-overhead.md); CUDA only: without a device it
 * says so and exits with status 2.
 */
public final class HostOverheadProfile {
    private static final int ROUNDS = 9;
    private static final int WARMUP_ROUNDS = 20;

    private final CudaStream stream;
    private final List<String> rows = new ArrayList<>();

    private HostOverheadProfile(CudaStream stream) {
        this.stream = stream;
    }

    public static void main(String[] args) throws IOException {
        Path out = Path.of(args.length > 0 ? args[0] : "host-overhead.md");
        var reason = Backends.cudaUnavailableReason();
        if (reason.isPresent()) {
            System.err.println("HostOverheadProfile needs a CUDA device: " + reason.get());
            System.exit(2);
        }
        try (CudaFouRA foura = Backends.fouRACuda();
             CudaFourierFT fourierft = CudaFourierFT.open(foura.context());
             CudaStream stream = foura.context().createStream()) {
            HostOverheadProfile p = new HostOverheadProfile(stream);
            p.profile(foura, fourierft);
            StringBuilder md = new StringBuilder("# Host time per call\n\n").append(foura.description())
                    .append("\n\nMedian of ").append(ROUNDS).append(" rounds, µs per call issued (see the class's doc).\n\n")
                    .append("| call | µs |\n|---|---:|\n");
            for (String r : p.rows) {
                md.append(r).append('\n');
            }
            Files.writeString(out, md.toString());
            System.out.print(md);
        }
    }

    /** Times {@code perRound} calls of {@code call} per round, synchronizing between rounds. */
    private void time(String what, int perRound, boolean syncEach, Runnable call) {
        double[] perCall = new double[ROUNDS];
        for (int round = -WARMUP_ROUNDS; round < ROUNDS; round++) {
            long start = System.nanoTime();
            for (int i = 0; i < perRound; i++) {
                call.run();
                if (syncEach) {
                    stream.synchronize();
                }
            }
            long took = System.nanoTime() - start;
            stream.synchronize();
            if (round >= 0) {
                perCall[round] = took / 1e3 / perRound;
            }
        }
        Arrays.sort(perCall);
        rows.add(String.format("| %s | %.2f |", what, perCall[ROUNDS / 2]));
    }

    private void profile(CudaFouRA foura, CudaFourierFT fourierft) throws IOException {
        CudaContext context = foura.context();
        context.makeCurrent();
        time("cuCtxSetCurrent (makeCurrent)", 64, false, context::makeCurrent);
        time("stream synchronize, idle", 64, false, stream::synchronize);
        launches(context);
        try (DeviceBuffer a = context.allocate(DType.FLOAT32, 32L * 4096);
             DeviceBuffer b = context.allocate(DType.FLOAT32, 4096);
             DeviceBuffer c = context.allocate(DType.FLOAT32, 2L * 4096)) {
            time("cuMemAllocAsync + cuMemFreeAsync, 1 MiB (StreamScratch)", 16, false, () -> {
                try (StreamScratch s = new StreamScratch(stream)) {
                    s.allocate(1 << 20);
                }
            });
            long x = b.array().address();
            long w = a.array().address();
            long z = c.array().address();
            time("cuBLAS SGEMM 1 × 32 × 4096 (Blas.gemm)", 16, false,
                    () -> context.blas().gemm(stream, false, true, 1, 32, 4096, 1f, x, 4096, w, 4096, 0f, z, 32));
            FftPlans.Shape r2c = FftPlans.oneD(FftPlans.Direction.R2C, 4096, 1, false);
            long work = context.fftPlans().workBytes(r2c);
            try (DeviceBuffer workArea = context.allocate(DType.FLOAT32, Math.max(1, work / 4 + 1))) {
                time("cuFFT R2C 4096 × 1", 16, false,
                        () -> context.fftPlans().run(r2c, x, z, work > 0 ? workArea.array().address() : 0, stream));
            }
        }
        forwards(foura, fourierft, context);
    }

    /** Launches of a 14-argument and a 5-argument kernel whose threads return at once, both marshalings. */
    private void launches(CudaContext context) throws IOException {
        String[] kernels = {"fourierft_gather_scatter_mixed", "fourierft_coeff_grad_reduce"};
        CUmodule raw = new CUmodule();
        cuModuleLoadData(raw, image(context.computeCapability()));
        try (KernelModule module = new KernelModule("fourierft", context.computeCapability(), kernels, false);
             DeviceBuffer any = context.allocate(DType.FLOAT32, 1024)) {
            long p = any.array().address();
            // outBins = 0, n = 0: every thread returns at once
            Object[] wide = {p, 1, p, 0, 1, p, 1, p, p, p, p, 1f, 1, 1};
            Object[] narrow = {p, 1, 0, 1f, p};
            for (int k = 0; k < 2; k++) {
                Object[] args = k == 0 ? wide : narrow;
                String kernel = kernels[k];
                CUfunction f = new CUfunction();
                cuModuleGetFunction(f, raw, kernel);
                time(String.format("launch, %d arguments, a JCuda Pointer per argument", args.length), 64, false,
                        () -> cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, stream.jcuda(), perArgument(args), null));
                time(String.format("launch, %d arguments, argument block (KernelModule)", args.length), 64, false,
                        () -> module.launch(kernel, 1, 1, 32, stream, args));
            }
            time("launch + synchronize, 5 arguments", 16, true, () -> module.launch(kernels[1], 1, 1, 32, stream, narrow));
        } finally {
            cuModuleUnload(raw);
        }
    }

    /** The marshaling KernelModule used before its argument block: a Pointer to one Pointer per argument. */
    private static Pointer perArgument(Object[] args) {
        Pointer[] params = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            params[i] = a instanceof Long v ? Pointer.to(new long[] {v})
                    : a instanceof Integer v ? Pointer.to(new int[] {v}) : Pointer.to(new float[] {(Float) a});
        }
        return Pointer.to(params);
    }

    private static byte[] image(int computeCapability) throws IOException {
        String name = computeCapability == 90 ? "fourierft.sm_90.cubin"
                : computeCapability > 90 ? "fourierft.compute_90.ptx" : "fourierft.compute_75.ptx";
        try (InputStream in = HostOverheadProfile.class.getResourceAsStream("/org/spectralpeft/kernels/" + name)) {
            if (in == null) {
                throw new IOException("kernel image " + name + " is not on the class path");
            }
            byte[] bytes = in.readAllBytes();
            return name.endsWith(".ptx") ? Arrays.copyOf(bytes, bytes.length + 1) : bytes; // PTX: NUL-terminated
        }
    }

    /** The small-T forwards the GPU runs found host-bound: FouRA (r = 16 DFT) and FourierFT (n = 1000), d = 4096. */
    private void forwards(CudaFouRA foura, CudaFourierFT fourierft, CudaContext context) {
        int d = 4096;
        FouRASpec spec = FouRASpec.of(d, d, 16, FouRASpec.Transform.DFT, FouRASpec.Gate.NONE, 1f);
        FourierFTSpec ftSpec = FourierFTSpec.fromSeed(d, d, 1000);
        try (FouRAFactors factors = foura.prepare(spec, Bench.gaussian(16 * d, 3), Bench.gaussian(d * 16, 4), null);
             DeviceBuffer coeffs = context.upload(Bench.gaussian(DType.FLOAT32, 1000, 2));
             DeviceBuffer x = context.upload(Bench.gaussian(DType.FLOAT32, 16 * d, 5));
             DeviceBuffer y = context.upload(Bench.gaussian(DType.FLOAT32, 16 * d, 6))) {
            for (int tokens : new int[] {1, 16}) {
                var xs = x.array().slice(0, (long) tokens * d);
                var ys = y.array().slice(0, (long) tokens * d);
                String fouraRow = "FouRA forward r=16 DFT T=" + tokens;
                Runnable fouraCall = () -> foura.forward(factors, xs, tokens, ys, stream);
                issueAndSync(fouraRow, fouraCall);
                SystemProperty.with(CudaFouRA.FORWARD_PROPERTY, "gemm", // three launches, two of them cuBLAS
                        () -> issueAndSync(fouraRow + ", SGEMMs", fouraCall));
                SystemProperty.with(CudaFouRA.FORWARD_PROPERTY, "kernels", // two launches, no cuBLAS
                        () -> issueAndSync(fouraRow + ", forward kernels", fouraCall));
                SystemProperty.with(CudaFouRA.FORWARD_PROPERTY, "small", // one launch, no scratch
                        () -> issueAndSync(fouraRow + ", small", fouraCall));
                SystemProperty.with(CudaFouRA.FORWARD_PROPERTY, "tiled", // two launches, no cuBLAS, split K
                        () -> issueAndSync(fouraRow + ", tiled", fouraCall));
                String fourierftRow = "FourierFT forward n=1000 T=" + tokens;
                Runnable fourierftCall = () -> fourierft.forward(ftSpec, coeffs.array(), xs, tokens, ys, stream);
                SystemProperty.with(CudaFourierFT.FORWARD_PROPERTY, "cufft", // four launches and cuFFT
                        () -> issueAndSync(fourierftRow, fourierftCall));
                SystemProperty.with(CudaFourierFT.FORWARD_PROPERTY, "fused", // one launch, no scratch
                        () -> issueAndSync(fourierftRow + ", fused kernel", fourierftCall));
            }
        }
        backwards(foura, context);
    }

    /**
     * FouRA's backward at T = 1, both transforms (r = 16, d = 4096): the stage profiles found its host share at 154 µs
     * (DFT) and 285 µs (DCT) per forward + backward against 75–85 µs of GPU stages.
     */
    private void backwards(CudaFouRA foura, CudaContext context) {
        int d = 4096;
        try (DeviceBuffer x = context.upload(Bench.gaussian(DType.FLOAT32, d, 5));
             DeviceBuffer gy = context.upload(Bench.gaussian(DType.FLOAT32, d, 6));
             DeviceBuffer gx = context.upload(Bench.gaussian(DType.FLOAT32, d, 7));
             DeviceBuffer gA = context.allocate(DType.FLOAT32, 16L * d);
             DeviceBuffer gB = context.allocate(DType.FLOAT32, 16L * d)) {
            for (FouRASpec.Transform transform : FouRASpec.Transform.values()) {
                FouRASpec spec = FouRASpec.of(d, d, 16, transform, FouRASpec.Gate.NONE, 1f);
                try (FouRAFactors factors = foura.prepare(spec, Bench.gaussian(16 * d, 3), Bench.gaussian(d * 16, 4),
                        null)) {
                    Runnable call = () -> foura.backward(factors, x.array(), gy.array(), 1, gA.array(), gB.array(), null,
                            gx.array(), stream);
                    issueAndSync("FouRA backward r=16 " + transform + " T=1", call);
                }
            }
        }
    }

    /** Two rows for a call: its time issued (16 per round), and with a synchronization after each ("+ sync"). */
    private void issueAndSync(String what, Runnable call) {
        time(what, 16, false, call);
        time(what + " + sync", 16, true, call);
    }
}
