package org.spectralpeft.core;

/** How a result lands in its destination. The code is shared with the CUDA epilogue kernel. */
public enum WriteMode {
    /** dst = result */
    STORE(0),
    /** dst += result */
    ADD(1),
    /** dst -= result */
    SUBTRACT(2);

    private final int code;

    WriteMode(int code) {
        this.code = code;
    }

    /**
     * The mode's code in the CUDA epilogue kernel.
     *
     * @return the code
     */
    public int code() {
        return code;
    }
}
