package org.spectralpeft.cuda.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.spectralpeft.core.DType;
import org.spectralpeft.cuda.DeviceArray;

/** Which device a library allocation lives on, by address range, and the refusal of another device's arrays. */
class DeviceMemoryRegistryTest {
    private static final long BASE = 0x7e00_0000_0000L; // far from any allocation a test makes

    @Test
    void rangesMapToTheirDevice() {
        DeviceMemoryRegistry.register(BASE, 4096, 1);
        DeviceMemoryRegistry.register(BASE + 8192, 100, 0);
        try {
            assertEquals(1, DeviceMemoryRegistry.deviceOf(BASE));
            assertEquals(1, DeviceMemoryRegistry.deviceOf(BASE + 4095));
            assertEquals(-1, DeviceMemoryRegistry.deviceOf(BASE + 4096), "one past the end is not inside");
            assertEquals(-1, DeviceMemoryRegistry.deviceOf(BASE - 1));
            assertEquals(0, DeviceMemoryRegistry.deviceOf(BASE + 8192 + 99));
            assertEquals(-1, DeviceMemoryRegistry.deviceOf(BASE + 8192 + 100));

            DeviceArray onOne = DeviceArray.foreign(BASE + 64, 16, DType.FLOAT32);
            DeviceMemoryRegistry.requireOn("x", onOne, 1);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> DeviceMemoryRegistry.requireOn("x", onOne, 0));
            assertTrue(e.getMessage().contains("x is a buffer on CUDA device 1, but this backend runs on device 0"),
                    e.getMessage());
            DeviceMemoryRegistry.requireOn("y", DeviceArray.foreign(BASE + 5000, 4, DType.BFLOAT16), 0); // foreign: unchecked
        } finally {
            DeviceMemoryRegistry.unregister(BASE);
            DeviceMemoryRegistry.unregister(BASE + 8192);
        }
        assertEquals(-1, DeviceMemoryRegistry.deviceOf(BASE + 10), "a freed allocation is forgotten");
    }
}
