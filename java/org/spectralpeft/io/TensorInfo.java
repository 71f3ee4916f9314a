package org.spectralpeft.io;

import java.util.Arrays;

/**
 * One tensor's header entry: name, element type, shape, and its byte range {@code [begin, end)} relative to
 * the start of the file's data section.
 *
 * @param name the tensor's name
 * @param dtype its element type
 * @param shape its dimensions, outermost first
 * @param begin offset of its first byte in the data section
 * @param end offset just past its last byte in the data section
 */
public record TensorInfo(String name, TensorDType dtype, long[] shape, long begin, long end) {

    /**
     * Copies the shape.
     *
     * @param name the tensor's name
     * @param dtype its element type
     * @param shape its dimensions, outermost first (copied)
     * @param begin offset of its first byte in the data section
     * @param end offset just past its last byte in the data section
     */
    public TensorInfo {
        shape = shape.clone();
    }

    /**
     * The dimensions, outermost first.
     *
     * @return a copy of the shape; empty for a scalar
     */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /**
     * Number of dimensions.
     *
     * @return the rank, 0 for a scalar
     */
    public int rank() {
        return shape.length;
    }

    /**
     * Size of one dimension.
     *
     * @param axis the dimension, 0 ≤ axis &lt; rank()
     * @return its size
     */
    public long dim(int axis) {
        return shape[axis];
    }

    /**
     * Number of elements (1 for a scalar).
     *
     * @return the product of the dimensions
     */
    public long elementCount() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /**
     * Size of the tensor's data in bytes.
     *
     * @return end - begin
     */
    public long byteLength() {
        return end - begin;
    }

    /**
     * The shape as PyTorch prints it: [768, 2304].
     *
     * @return the shape in brackets
     */
    public String shapeString() {
        return Arrays.toString(shape);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t && name.equals(t.name) && dtype == t.dtype && Arrays.equals(shape, t.shape)
                && begin == t.begin && end == t.end;
    }

    @Override
    public int hashCode() {
        return 31 * (31 * name.hashCode() + dtype.hashCode()) + Arrays.hashCode(shape) + Long.hashCode(begin);
    }

    @Override
    public String toString() {
        return name + " " + dtype + shapeString();
    }
}
