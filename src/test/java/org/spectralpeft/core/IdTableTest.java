package org.spectralpeft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.spectralpeft.TestData;

/** The id table against a map: it grows past the size it was made for, replaces values, and forgets on clear. */
class IdTableTest {
    @Test
    void keepsTheLastValueOfEveryIdAsItGrowsAndForgetsThemOnClear() {
        TestData data = new TestData();
        IdTable table = new IdTable(1);
        Map<Integer, Integer> model = new HashMap<>();
        for (int round = 0; round < 3; round++) {
            for (int i = 0; i < 5000; i++) {
                // strided (the hash must spread them), small and scattered ids, negative ones too
                int id = data.nextInt(3) == 0 ? i * 4096 : data.nextInt(4) == 0 ? i - 100 : data.nextInt(Integer.MAX_VALUE);
                assertEquals(model.getOrDefault(id, -1), table.get(id), "id " + id + data.tag());
                int value = data.nextInt(100_000);
                model.put(id, value);
                table.put(id, value);
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
