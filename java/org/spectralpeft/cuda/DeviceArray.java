package org.spectralpeft.cuda;

import org.spectralpeft.core.Checks;
import org.spectralpeft.core.DType;

/**
 * A view of device memory: raw address, element count and element type. Either a library-owned
 * {@link DeviceBuffer}'s view or a foreign pointer owned by a host framework (a tensor's data pointer);
 * the library never frees a foreign array. Must live in the context of the backend it is
 * passed to ({@link CudaContext}: the device's primary context).
 */
public record DeviceArray(long address, long length, DType dtype) {

    /**
     * Checks the view.
     *
     * @param address the device address of element 0, not 0
     * @param length number of elements, at least 1
     * @param dtype the element type
     * @throws IllegalArgumentException if {@code dtype} is null, {@code address} is 0 or {@code length} &lt; 1
     */
    public DeviceArray {
        Checks.notNull(dtype, "dtype");
        if (address == 0) {
            throw new IllegalArgumentException("device address is null");
        }
        if (length < 1) {
            throw new IllegalArgumentException("device array length must be at least 1, got " + length);
        }
    }

    /**
     * A framework-owned device array: {@code length} elements of {@code dtype} at {@code address}.
     *
     * @param address the device address of element 0
     * @param length number of elements, at least 1
     * @param dtype the element type
     * @return the view
     * @throws IllegalArgumentException if {@code address} is 0 or {@code length} &lt; 1
     */
    public static DeviceArray foreign(long address, long length, DType dtype) {
        return new DeviceArray(address, length, dtype);
    }

    /**
     * Elements {@code offset .. offset+length-1} of this array, as an array of their own.
     *
     * @param offset first element, 0 or more
     * @param length number of elements, at least 1
     * @return the view
     * @throws IndexOutOfBoundsException if the range does not lie within this array
     */
    public DeviceArray slice(long offset, long length) {
        if (offset < 0 || length < 1 || offset + length > this.length) {
            throw new IndexOutOfBoundsException("slice [" + offset + ", " + (offset + length) + ") of a device array of "
                    + this.length + " elements");
        }
        return new DeviceArray(address + offset * dtype.bytes(), length, dtype);
    }

    /**
     * Size of the array in bytes.
     *
     * @return length × the dtype's element size
     */
    public long bytes() {
        return length * dtype.bytes();
    }
}
