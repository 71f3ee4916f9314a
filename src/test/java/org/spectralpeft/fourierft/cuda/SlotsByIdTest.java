package org.spectralpeft.fourierft.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.spectralpeft.TestData;

/** The device pools' id → slot table against a map: it grows, overwrites, forgets on clear. */
class SlotsByIdTest {
    @Test
    void keepsTheLastSlotOfEveryIdAsItGrowsAndForgetsThemOnClear() {
        TestData data = new TestData();
        DevicePools.SlotsById table = new DevicePools.SlotsById();
        Map<Integer, Integer> model = new HashMap<>();
        for (int round = 0; round < 3; round++) {
            for (int i = 0; i < 5000; i++) {
                int id = data.nextInt(3) == 0 ? i * 4096 : data.nextInt(4) == 0 ? i : data.nextInt(Integer.MAX_VALUE);
                assertEquals(model.getOrDefault(id, -1), table.get(id), "id " + id + data.tag());
                int slot = data.nextInt(100_000);
                model.put(id, slot);
                table.put(id, slot);
            }
            for (Map.Entry<Integer, Integer> e : model.entrySet()) {
                assertEquals(e.getValue(), table.get(e.getKey()), "id " + e.getKey() + data.tag());
            }
            table.clear();
            for (int id : model.keySet()) {
                assertEquals(-1, table.get(id), "cleared id " + id + data.tag());
            }
            model.clear();
        }
    }
}
