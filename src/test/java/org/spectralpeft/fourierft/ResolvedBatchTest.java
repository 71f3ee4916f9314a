package org.spectralpeft.fourierft;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.spectralpeft.TestData;

/** A mixed batch's resolution against a plain model of it: first-use order, places, sets, and refusals. */
class ResolvedBatchTest {
    private static final FourierFTSpec SET_A = FourierFTSpec.fromSeed(9, 7, 5, 1, 1f);
    private static final FourierFTSpec SET_B = FourierFTSpec.fromSeed(9, 7, 5, 2, 1f);

    /** Ids on both sides of the dense range's end and at the top of the int range. */
    private static final int[] IDS = {0, 1, 2, 63, 64, 1000, FourierFTAdapterPool.DENSE_IDS - 1,
        FourierFTAdapterPool.DENSE_IDS, FourierFTAdapterPool.DENSE_IDS + 1, Integer.MAX_VALUE};

    private static FourierFTAdapterPool pool(TestData data) {
        FourierFTAdapterPool pool = new FourierFTAdapterPool(9, 7);
        for (int i = 0; i < IDS.length; i++) {
            FourierFTSpec set = i % 3 == 2 ? SET_B : SET_A;
            pool.add(IDS[i], set.withAlpha(1f + i % 4), data.gaussian(5)); // α's differ within a set
        }
        return pool;
    }

    /** Random batches with runs of one id, −1s inside and between runs, every id of the pool. */
    @Test
    void placesFollowFirstUseAndSetsGroupTheAdapters() {
        TestData data = new TestData();
        FourierFTAdapterPool pool = pool(data);
        for (int trial = 0; trial < 200; trial++) {
            int tokens = 1 + data.nextInt(60);
            int[] ids = new int[tokens];
            for (int t = 0; t < tokens; t++) {
                boolean run = t > 0 && data.nextInt(3) == 0;
                ids[t] = run ? ids[t - 1] : data.nextInt(4) == 0 ? -1 : IDS[data.nextInt(IDS.length)];
            }
            ResolvedBatch batch = ResolvedBatch.of(pool, ids);
            List<Integer> firstUse = new ArrayList<>();
            List<FourierFTSpec> sets = new ArrayList<>();
            for (int id : ids) {
                if (id != -1 && !firstUse.contains(id)) {
                    firstUse.add(id);
                    FourierFTSpec spec = pool.adapter(id).spec();
                    if (sets.stream().noneMatch(spec::sameIndexSet)) {
                        sets.add(spec);
                    }
                }
            }
            String what = "trial " + trial + data.tag();
            assertEquals(tokens, batch.tokens(), what);
            assertEquals(firstUse.size(), batch.adapterCount(), what);
            assertEquals(firstUse.isEmpty(), batch.isEmpty(), what);
            assertEquals(sets.size(), batch.setCount(), what);
            for (int s = 0; s < sets.size(); s++) { // an index set: its α no adapter's
                assertTrue(sets.get(s).sameIndexSet(batch.set(s)) && Float.isNaN(batch.set(s).alpha()), what);
            }
            for (int i = 0; i < firstUse.size(); i++) {
                assertSame(pool.adapter(firstUse.get(i)), batch.adapter(i), what);
                assertEquals((int) firstUse.get(i), batch.adapterId(i), what);
                FourierFTSpec spec = batch.adapter(i).spec();
                assertEquals(sets.indexOf(sets.stream().filter(spec::sameIndexSet).findFirst().get()), batch.setOf(i),
                        what);
            }
            for (int t = 0; t < tokens; t++) {
                assertEquals(ids[t] == -1 ? -1 : firstUse.indexOf(ids[t]), batch.place(t), what + ", token " + t);
                if (ids[t] != -1) {
                    assertSame(pool.adapter(ids[t]), batch.adapter(batch.place(t)), what + ", token " + t);
                }
            }
            org.spectralpeft.core.TokenRows.Groups groups = batch.tokensByAdapter();
            for (int i = 0; i < firstUse.size(); i++) { // each adapter's tokens, in token order
                List<Integer> expected = new ArrayList<>();
                for (int t = 0; t < tokens; t++) {
                    if (ids[t] == firstUse.get(i)) {
                        expected.add(t);
                    }
                }
                assertEquals(expected, groups.tokensOf(i), what + ", adapter " + i);
            }
        }
    }

    @Test
    void theFirstBadTokenIsNamedAndARemovedIdIsRefused() {
        TestData data = new TestData();
        FourierFTAdapterPool pool = pool(data);
        expectMessage("adapterIds[2] = 5 is not in the pool", () -> ResolvedBatch.of(pool, new int[] {0, 0, 5, 7}));
        expectMessage("adapterIds[1] = -2 is negative", () -> ResolvedBatch.of(pool, new int[] {-1, -2, 5}));
        expectMessage("adapterIds[3] = " + Integer.MIN_VALUE, () -> ResolvedBatch.of(pool,
                new int[] {0, -1, 0, Integer.MIN_VALUE}));
        int big = FourierFTAdapterPool.DENSE_IDS + 2;
        expectMessage("adapterIds[0] = " + big + " is not in the pool", () -> ResolvedBatch.of(pool, new int[] {big}));
        pool.remove(63);
        pool.remove(Integer.MAX_VALUE);
        expectMessage("adapterIds[1] = 63", () -> ResolvedBatch.of(pool, new int[] {0, 63}));
        expectMessage("adapterIds[0] = " + Integer.MAX_VALUE, () -> ResolvedBatch.of(pool, new int[] {Integer.MAX_VALUE}));
        pool.add(63, SET_B, data.gaussian(5));
        ResolvedBatch again = ResolvedBatch.of(pool, new int[] {63, -1, 63});
        assertSame(pool.adapter(63), again.adapter(0), "a re-added id resolves to its new adapter");
        assertTrue(SET_B.sameIndexSet(again.set(0)));
        assertTrue(ResolvedBatch.of(pool, new int[] {-1, -1}).isEmpty());
    }

    /** The pool's last batch comes back for the same ids while no adapter was added or removed, and only then. */
    @Test
    void theSameIdsGetTheLastBatchBackUntilThePoolChanges() {
        TestData data = new TestData();
        FourierFTAdapterPool pool = pool(data);
        int[] ids = {0, 0, 63, -1, Integer.MAX_VALUE, 2};
        ResolvedBatch first = ResolvedBatch.of(pool, ids);
        assertSame(first, ResolvedBatch.of(pool, ids.clone()), "equal ids, pool unchanged: the same batch");
        assertSame(first.tokensByAdapter(), first.tokensByAdapter(), "grouped once");
        Object key = new Object();
        int[] made = {0};
        String derived = first.derived(key, b -> "derived " + ++made[0]);
        assertSame(derived, first.derived(key, b -> "derived " + ++made[0]));
        assertEquals(1, made[0], "derived once per batch and key");
        assertEquals("other key 2", first.derived(new Object(), b -> "other key " + ++made[0]));

        ids[1] = 2; // the caller's array changed after the call: the batch kept its own copy
        ResolvedBatch changed = ResolvedBatch.of(pool, ids);
        assertNotSame(first, changed);
        assertEquals(1, changed.place(1), "resolved from the new ids: 2 is now the second adapter used");
        assertEquals(1, changed.place(5));
        assertSame(pool.adapter(2), changed.adapter(changed.place(1)));
        assertSame(changed, ResolvedBatch.of(pool, ids));

        pool.add(5, SET_A, data.gaussian(5)); // an adapter the batch does not use: still a new resolve
        ResolvedBatch afterAdd = ResolvedBatch.of(pool, ids);
        assertNotSame(changed, afterAdd);
        assertSame(afterAdd, ResolvedBatch.of(pool, ids));

        FourierFTAdapterPool.Adapter old63 = pool.adapter(63);
        pool.remove(63);
        expectMessage("adapterIds[2] = 63 is not in the pool", () -> ResolvedBatch.of(pool, ids));
        pool.add(63, SET_B, data.gaussian(5));
        ResolvedBatch readded = ResolvedBatch.of(pool, ids);
        assertNotSame(old63, readded.adapter(readded.place(2)));
        assertSame(pool.adapter(63), readded.adapter(readded.place(2)), "a re-added id resolves to its new adapter");
        assertSame(readded, ResolvedBatch.of(pool, ids), "a refused call left no batch behind");
    }

    /**
     * A batch groups its adapters by the pool's set numbers without reading the adapters: a number is confirmed only
     * while the id still holds the adapter the call found, so an adapter replaced under its id by one of another
     * index set, while calls resolve from three threads, never lands in the other set's group.
     */
    @Test
    void setsStayTheAdaptersOwnWhileIdsAreReplacedByAnotherIndexSet() throws Exception {
        TestData data = new TestData();
        FourierFTAdapterPool pool = new FourierFTAdapterPool(9, 7);
        for (int id = 0; id < 64; id++) {
            pool.add(id, id % 2 == 0 ? SET_A : SET_B, data.gaussian(5));
        }
        FourierFTAdapterPool.Adapter first = pool.adapter(5);
        int number = pool.setNumberOf(5, first);
        assertTrue(number >= 0);
        assertTrue(SET_B.sameIndexSet(pool.setOfNumber(number)));
        pool.remove(5);
        assertEquals(-1, pool.setNumberOf(5, first), "removed");
        pool.add(5, SET_A, data.gaussian(5));
        assertEquals(-1, pool.setNumberOf(5, first), "replaced: the number is the new adapter's");
        assertTrue(SET_A.sameIndexSet(pool.setOfNumber(pool.setNumberOf(5, pool.adapter(5)))));
        assertEquals(-1, pool.setNumberOf(FourierFTAdapterPool.DENSE_IDS + 1, first), "beyond the dense ids");

        int[] ids = new int[64];
        for (int t = 0; t < 64; t++) {
            ids[t] = (t * 37) % 64;
        }
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        Thread churn = new Thread(() -> {
            java.util.Random r = new java.util.Random(data.seed);
            while (!stop.get()) {
                int id = r.nextInt(64);
                FourierFTSpec now = pool.adapter(id).spec();
                pool.remove(id);
                pool.add(id, now.sameIndexSet(SET_A) ? SET_B : SET_A, new float[] {1, 2, 3, 4, 5});
            }
        });
        churn.start();
        java.util.concurrent.ExecutorService threads = java.util.concurrent.Executors.newFixedThreadPool(3);
        try {
            List<java.util.concurrent.Future<Integer>> calls = new ArrayList<>();
            for (int k = 0; k < 3; k++) {
                calls.add(threads.submit(() -> {
                    int checked = 0;
                    for (int round = 0; round < 2000; round++) {
                        int[] mine = ids.clone();
                        mine[round % 64] = (mine[round % 64] + round) % 64; // a miss of the pool's last batch
                        ResolvedBatch batch;
                        try {
                            batch = ResolvedBatch.of(pool, mine);
                        } catch (IllegalArgumentException e) { // an id out at that moment
                            continue;
                        }
                        for (int i = 0; i < batch.adapterCount(); i++) {
                            assertEquals(batch.adapter(i).indexSet(), batch.set(batch.setOf(i)),
                                    "adapter " + batch.adapterId(i) + data.tag());
                        }
                        checked++;
                    }
                    return checked;
                }));
            }
            int checked = 0;
            for (java.util.concurrent.Future<Integer> call : calls) {
                checked += call.get();
            }
            assertTrue(checked > 0, "no call resolved");
        } finally {
            threads.shutdown();
            stop.set(true);
            churn.join();
        }
    }

    private static void expectMessage(String fragment, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), e.getMessage() + " should name " + fragment);
    }
}
