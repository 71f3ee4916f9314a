package org.spectralpeft.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.spectralpeft.TestData;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.fourierft.cuda.RequiresCuda;

/**
 * Stream-ordered device buffers ({@link CudaContext#allocate(DType, long, CudaStream)}): they hold what is written,
 * their frees return the memory to the pool (a loop of them does not pile up), a buffer outliving its stream is
 * still freed, and a missing stream or a closed buffer is refused.
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class StreamOrderedBufferTest {
    @Test
    void holdsWhatIsWrittenAndFreesInItsStreamsOrder() {
        TestData data = new TestData();
        try (CudaContext context = CudaContext.open(0); CudaStream stream = context.createStream()) {
            int length = 1 + data.nextInt(5000);
            float[] values = data.gaussian(length);
            DeviceBuffer b = context.allocate(DType.FLOAT32, length, stream);
            stream.synchronize(); // the synchronous copies below run on the legacy stream
            b.copyFrom(HostArray.float32(values));
            HostArray back = HostArray.float32(new float[length]);
            b.copyTo(back);
            assertArrayEquals(values, back.toFloats(), data.tag());
            assertEquals(length, b.array().length());
            assertEquals(DType.FLOAT32, b.array().dtype());
            b.close();
            b.close(); // a second close does nothing
            assertThrows(IllegalStateException.class, b::array, "a closed buffer is refused");
        }
    }

    @Test
    void aLoopOfThemReusesThePoolsMemory() {
        try (CudaContext context = CudaContext.open(0); CudaStream stream = context.createStream()) {
            long length = 2L << 20; // 8 MB each
            stream.synchronize();
            context.resetPoolUsedHigh();
            long before = context.poolUsedHighBytes();
            for (int i = 0; i < 20; i++) {
                try (DeviceBuffer b = context.allocate(DType.FLOAT32, length, stream)) {
                    assertTrue(b.array().address() != 0);
                }
                stream.synchronize(); // the free has run (a host running ahead may hold several until then)
            }
            long peak = context.poolUsedHighBytes() - before;
            // each free returns its 8 MB to the pool before the next allocation: without the frees, 20 × 8 MB
            assertTrue(peak <= 2 * 4 * length, "20 buffers of 8 MB, one after another, peaked at " + peak + " bytes");
        }
    }

    @Test
    void aBufferThatOutlivesItsStreamIsStillFreed() {
        TestData data = new TestData();
        try (CudaContext context = CudaContext.open(0)) {
            CudaStream stream = context.createStream();
            DeviceBuffer b = context.allocate(DType.FLOAT16, 1 + data.nextInt(3000), stream);
            stream.close();
            b.close(); // synchronizes, then frees: no error, nothing left behind
            assertThrows(IllegalStateException.class, b::array);
        }
    }

    @Test
    void aMissingOrClosedStreamIsRefused() {
        try (CudaContext context = CudaContext.open(0)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> context.allocate(DType.FLOAT32, 16, null));
            assertTrue(e.getMessage().contains("stream"), e.getMessage());
            CudaStream stream = context.createStream();
            stream.close();
            IllegalStateException closed = assertThrows(IllegalStateException.class,
                    () -> context.allocate(DType.FLOAT32, 16, stream));
            assertTrue(closed.getMessage().contains("stream is closed"), closed.getMessage());
            try (CudaStream open = context.createStream()) {
                assertThrows(IllegalArgumentException.class, () -> context.allocate(DType.FLOAT32, 0, open),
                        "no empty buffers");
            }
        }
    }
}
