package org.spectralpeft.cuda.internal;

import java.lang.reflect.Constructor;
import java.lang.reflect.Method;
import jcuda.NativePointerObject;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.cudart.float2;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * Moves raw device addresses and stream handles between the two bindings: JCuda (driver API: memory,
 * launches) and the JavaCPP presets (cuFFT, cuBLAS). Both see the same primary context, so a 64-bit address
 * or a CUstream handle means the same thing on either side.
 *
 * <p>JCuda keeps native handles private (its {@code CUstream(long)} constructor is package-private);
 * reflection reaches them, which works because JCuda is loaded on the class path (unnamed module).
 */
public final class NativeHandles {
    private static final Method NATIVE_POINTER;
    private static final Constructor<CUstream> STREAM_FROM_HANDLE;

    static {
        try {
            NATIVE_POINTER = NativePointerObject.class.getDeclaredMethod("getNativePointer");
            NATIVE_POINTER.setAccessible(true);
            STREAM_FROM_HANDLE = CUstream.class.getDeclaredConstructor(long.class);
            STREAM_FROM_HANDLE.setAccessible(true);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private NativeHandles() {
    }

    /** The raw handle or address held by a JCuda object (a CUstream, or a CUdeviceptr without offset). */
    public static long handleOf(NativePointerObject object) {
        try {
            return (Long) NATIVE_POINTER.invoke(object);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot read a JCuda handle", e);
        }
    }

    public static CUstream streamOf(long handle) {
        try {
            return STREAM_FROM_HANDLE.newInstance(handle);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot wrap CUDA stream handle " + handle, e);
        }
    }

    public static CUdeviceptr devicePointer(long address) {
        return new CUdeviceptr().withByteOffset(address);
    }

    /** A JavaCPP pointer to a raw address; it owns nothing. */
    public static Pointer javacpp(long raw) {
        return new Pointer() {
            {
                address = raw;
            }
        };
    }

    public static float2 complexAt(long address) {
        return new float2(javacpp(address));
    }

    public static FloatPointer floatsAt(long address) {
        return new FloatPointer(javacpp(address));
    }

    /** A stream handle as the runtime-API libraries (cuFFT, cuBLAS) take it; 0 is the legacy default stream. */
    public static CUstream_st runtimeStream(long handle) {
        return handle == 0 ? null : new CUstream_st(javacpp(handle));
    }
}
