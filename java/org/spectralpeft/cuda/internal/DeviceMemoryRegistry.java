package org.spectralpeft.cuda.internal;

import java.util.Map;
import java.util.concurrent.ConcurrentSkipListMap;
import org.spectralpeft.core.Checks;
import org.spectralpeft.core.DType;
import org.spectralpeft.cuda.DeviceArray;

/**
 * The device of every live library-owned allocation ({@code DeviceBuffer}), by address range, so that an
 * entry point can refuse an array that lives on another device than its backend's, before any work: a
 * lookup in a sorted map, no driver call. A foreign array (a framework's pointer) is not registered and is
 * not checked: it carries no device, and asking the driver would cost a call per array per launch.
 */
public final class DeviceMemoryRegistry {
    private record Range(long end, int device) {
    }

    private static final ConcurrentSkipListMap<Long, Range> LIVE = new ConcurrentSkipListMap<>();

    private DeviceMemoryRegistry() {
    }

    /**
     * Records a live allocation.
     *
     * @param start its device address
     * @param bytes its size
     * @param device the CUDA device ordinal it was allocated on
     */
    public static void register(long start, long bytes, int device) {
        LIVE.put(start, new Range(start + bytes, device));
    }

    /**
     * Forgets an allocation (when it is freed).
     *
     * @param start the address given to {@link #register}
     */
    public static void unregister(long start) {
        LIVE.remove(start);
    }

    /**
     * The device of the live allocation holding {@code address}, or -1 when none does (foreign memory).
     *
     * @param address a device address
     * @return the device ordinal, or -1
     */
    public static int deviceOf(long address) {
        Map.Entry<Long, Range> e = LIVE.floorEntry(address);
        return e != null && address < e.getValue().end() ? e.getValue().device() : -1;
    }

    /**
     * Throws when {@code a} lies in a live library allocation on another device.
     *
     * @param name the argument's name, for the message
     * @param a the array
     * @param device the device the work runs on
     * @throws IllegalArgumentException naming the argument and both devices
     */
    public static void requireOn(String name, DeviceArray a, int device) {
        int owner = deviceOf(a.address());
        if (owner >= 0 && owner != device) {
            throw new IllegalArgumentException(name + " is a buffer on CUDA device " + owner
                    + ", but this backend runs on device " + device);
        }
    }

    /**
     * A device-array argument of a backend: not null, {@code expected} elements, and not a library buffer of
     * another device (see {@link #requireOn}).
     *
     * @param name the argument's name, for the message
     * @param a the array
     * @param expected the number of elements it must have
     * @param device the device the work runs on
     * @throws IllegalArgumentException naming the argument
     */
    public static void requireArray(String name, DeviceArray a, long expected, int device) {
        Checks.notNull(a, name);
        Checks.length(name, a.length(), expected);
        requireOn(name, a, device);
    }

    /**
     * As {@link #requireArray}, and float32.
     *
     * @param name the argument's name, for the message
     * @param a the array
     * @param expected the number of elements it must have
     * @param device the device the work runs on
     * @throws IllegalArgumentException naming the argument
     */
    public static void requireFloat32(String name, DeviceArray a, long expected, int device) {
        requireArray(name, a, expected, device);
        Checks.require(a.dtype() == DType.FLOAT32, name + " must be float32, got " + a.dtype());
    }
}
