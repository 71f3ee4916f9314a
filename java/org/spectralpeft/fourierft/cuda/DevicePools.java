package org.spectralpeft.fourierft.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoD;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemsetD32;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import java.lang.ref.WeakReference;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;
import jcuda.Pointer;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.IdTable;
import org.spectralpeft.core.TokenRows;
import org.spectralpeft.cuda.CudaContext;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.cuda.internal.NativeHandles;
import org.spectralpeft.fourierft.FourierFTAdapterPool;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.fourierft.ResolvedBatch;

/**
 * The device copies of the adapter pools a CUDA backend serves: per pool and index set, one growable table of
 * n-coefficient rows, a row (slot) per adapter, and beside it the same rows' scales (each adapter's α/(2·d_out·d_in):
 * adapters of one index set may differ in α), uploaded the first time a call uses the adapter and kept, so that
 * a mixed batch copies only its tokens' rows (4 bytes per token) per call. Internal: for {@link CudaFourierFT}.
 *
 * <p>Rules that keep calls in flight safe: a slot is written only while free, and a slot becomes free only after
 * a context synchronization once its adapter has left the pool (so no queued kernel still reads it); a grown
 * table's old buffer is freed at such a synchronization too; and a call holds its pool copy's lock from finding
 * its slots to launching the kernels that read them. A call that uploads adapters first waits for the device to
 * finish the work queued before (a context synchronization, once per such call), so that no kernel reads the
 * table while it is written: each is given the whole table, and the CUDA emulator checks it as a whole. Uploads
 * complete before the slot is handed out, so work on any stream sees them. In steady serving, when every adapter
 * of a call is on the device already, a call neither uploads nor waits. A pool's copy is freed with the backend,
 * or once the pool itself is unreachable.
 *
 * <p>Beside the tables each copy keeps its ids' entries ({@link PoolCopy#resident}): per id below {@link
 * #MAX_ENTRY_ID} on the device, (set << 24) | (row + 1), on the host and in a device array written with the rows
 * (so, like them, only while no kernel reads it). A call whose adapters are all on the device, while the pool is as
 * the copy last saw it, then needs no host pass per distinct adapter: the host checks each id against its entries,
 * and the device turns the raw ids into rows ({@code fourierft_token_rows}). An adapter's host entry is cleared when
 * it leaves the pool; its device entry may stay behind, never read, since the host lets no id past without an
 * entry of its own.
 */
final class DevicePools implements AutoCloseable {
    /** Rows of a set's first table; it doubles when full. */
    static final int FIRST_CAPACITY = 16;
    /** Ids below this get entries ({@link PoolCopy#resident}); larger ones take the resolved path. */
    static final int MAX_ENTRY_ID = 1 << 20;
    /** Sets numbered below this get entries: their number fits the entry's top bits and a call's 64-bit set mask. */
    static final int MAX_ENTRY_SETS = 64;
    /** Rows below this get entries: row + 1 fits the entry's low 24 bits. */
    static final int MAX_ENTRY_ROWS = (1 << 24) - 1;

    private final CudaContext context;
    /** Guarded by itself. */
    private final Map<FourierFTAdapterPool, PoolCopy> copies = new WeakHashMap<>();
    /** Every copy, to free those whose pool was collected. Guarded by copies. */
    private final List<PoolCopy> all = new ArrayList<>();

    DevicePools(CudaContext context) {
        this.context = context;
    }

    /** One pool's device tables. */
    final class PoolCopy {
        private final WeakReference<FourierFTAdapterPool> owner;
        private final Map<FourierFTSpec, SetTable> sets = new HashMap<>();
        /** The sets in the order they were made: a set's number is its place here. */
        private final List<SetTable> numbered = new ArrayList<>();
        /** Per id, (set << 24) | (row + 1) while its adapter is on the device (0: none); as long as the largest id seen. */
        private int[] entries = new int[0];
        /** The entries on the device (at least as long as {@link #entries}); old ones freed at the next reclaim. */
        private DeviceBuffer entryTable;
        private final List<DeviceBuffer> outgrownEntries = new ArrayList<>();
        /**
         * A call's place of each id among its distinct adapters ({@link #residentGroups}), valid where {@link
         * #placeStamp} holds the call's stamp: no clearing between calls.
         */
        private int[] placeOfId = new int[0];
        private int[] placeStamp = new int[0];
        private int stamp;
        private long seenVersion = -1;
        private boolean closed;
        /**
         * The last call's batch and slots: a call with the same batch (the pool's resolve cache gives the same
         * object back for the same ids while the pool is unchanged) gets them again, unless a slot or a table's
         * address may have changed since (an upload, which may grow a table, or a removal).
         */
        private ResolvedBatch lastBatch;
        private Slots lastSlots;
        private long changes;
        private long lastChanges = -1;

        private PoolCopy(FourierFTAdapterPool pool) {
            owner = new WeakReference<>(pool);
        }

        /**
         * Each adapter's slot in its set's table, uploading the ones not yet there; call with this copy's lock held
         * and launch the kernels that read the slots before releasing it.
         *
         * @param pool the pool this copies
         * @param batch a call's tokens, resolved in that pool
         * @return per set its table, per distinct adapter its slot
         */
        Slots slots(FourierFTAdapterPool pool, ResolvedBatch batch) {
            if (closed) {
                throw new IllegalStateException("the backend is closed");
            }
            long version = pool.version();
            if (version != seenVersion) {
                for (SetTable t : sets.values()) {
                    t.retireRemoved(pool, this);
                }
                seenVersion = version;
                changes++;
            }
            if (batch == lastBatch && changes == lastChanges) {
                return lastSlots;
            }
            SetTable[] tables = new SetTable[batch.setCount()];
            for (int s = 0; s < tables.length; s++) {
                tables[s] = sets.computeIfAbsent(batch.set(s), spec -> {
                    SetTable t = new SetTable(spec, numbered.size());
                    numbered.add(t);
                    return t;
                });
            }
            int[] rows = new int[batch.adapterCount()];
            boolean uploaded = false;
            for (int i = 0; i < rows.length; i++) {
                SetTable t = tables[batch.setOf(i)];
                FourierFTAdapterPool.Adapter a = batch.adapter(i);
                int slot = t.slotOf(batch.adapterId(i), a);
                if (slot < 0) {
                    if (!uploaded) {
                        // the table is written only while no kernel reads it: calls queued before, on any stream,
                        // may still be running (they read other rows, but a kernel is given the whole table)
                        cuCtxSynchronize();
                    }
                    slot = t.upload(a, this);
                    uploaded = true;
                }
                rows[i] = slot;
            }
            long[] addresses = new long[tables.length];
            long[] halfScales = new long[tables.length];
            for (int s = 0; s < tables.length; s++) { // after the uploads: a table may have grown
                addresses[s] = tables[s].table.array().address();
                halfScales[s] = tables[s].halfScales.array().address();
            }
            if (uploaded) {
                cuStreamSynchronize(CudaStream.legacyDefault().jcuda()); // the rows are on the device before use
                changes++;
            }
            lastBatch = batch;
            lastSlots = new Slots(addresses, halfScales, rows, new int[tables.length][]);
            lastChanges = changes;
            return lastSlots;
        }

        /**
         * The sets of a call whose ids all have entries, while the pool is unchanged since this copy last looked;
         * null otherwise (an id not on the device, not in the pool, or too large for an entry; or the pool changed):
         * then the call resolves its ids and finds its slots. Call with this copy's lock held, and launch the kernels
         * that read the entries and rows before releasing it.
         *
         * @param pool the pool this copies
         * @param ids one id per token, −1 for none
         * @return the call's sets, or null
         */
        Resident resident(FourierFTAdapterPool pool, int[] ids) {
            if (closed) {
                throw new IllegalStateException("the backend is closed");
            }
            if (pool.version() != seenVersion) {
                return null;
            }
            int[] e = entries;
            long mask = 0;
            for (int id : ids) {
                if (id == -1) {
                    continue;
                }
                if (id < 0 || id >= e.length || e[id] == 0) {
                    return null;
                }
                mask |= 1L << (e[id] >>> 24);
            }
            int count = Long.bitCount(mask);
            int[] numbers = new int[count];
            FourierFTSpec[] specs = new FourierFTSpec[count];
            long[] tables = new long[count];
            long[] halfScales = new long[count];
            for (int k = 0; k < count; k++) {
                int number = Long.numberOfTrailingZeros(mask);
                mask &= mask - 1;
                SetTable t = numbered.get(number);
                numbers[k] = number;
                specs[k] = t.spec;
                tables[k] = t.table.array().address();
                halfScales[k] = t.halfScales.array().address();
            }
            return new Resident(numbers, specs, tables, halfScales, count == 0 ? 0 : entryTable.array().address());
        }

        /**
         * As {@link #resident}, with what a backward needs besides: the call's distinct adapters in order of first
         * use (their ids, and each one's set as its place among the sets present), and the tokens grouped by them;
         * null where {@link #resident} would be. One pass over the ids, then a counting sort; no adapter is read.
         *
         * @param pool the pool this copies
         * @param ids one id per token, −1 for none
         * @return the call's adapters and sets, or null
         */
        ResidentGroups residentGroups(FourierFTAdapterPool pool, int[] ids) {
            Resident sets = resident(pool, ids);
            if (sets == null) {
                return null;
            }
            if (placeStamp.length < entries.length) {
                placeStamp = new int[entries.length];
                placeOfId = new int[entries.length];
                stamp = 0;
            }
            if (++stamp == 0) { // wrapped: no stamp in the array may match a new call's
                Arrays.fill(placeStamp, 0);
                stamp = 1;
            }
            int[] setPlace = new int[MAX_ENTRY_SETS];
            for (int k = 0; k < sets.sets(); k++) {
                setPlace[sets.numbers()[k]] = k;
            }
            int[] place = new int[ids.length];
            int[] adapterIds = new int[Math.min(ids.length, 16)];
            int[] setOf = new int[adapterIds.length];
            float[] scaleOf = new float[adapterIds.length];
            int count = 0;
            for (int t = 0; t < ids.length; t++) {
                int id = ids[t];
                if (id == -1) {
                    place[t] = -1;
                    continue;
                }
                if (placeStamp[id] != stamp) {
                    if (count == adapterIds.length) {
                        adapterIds = Arrays.copyOf(adapterIds, Math.min(ids.length, 2 * count));
                        setOf = Arrays.copyOf(setOf, adapterIds.length);
                        scaleOf = Arrays.copyOf(scaleOf, adapterIds.length);
                    }
                    placeStamp[id] = stamp;
                    placeOfId[id] = count;
                    adapterIds[count] = id;
                    int entry = entries[id];
                    // an id with an entry is its row's holder (entries are cleared with the holders)
                    scaleOf[count] = numbered.get(entry >>> 24).holders[(entry & MAX_ENTRY_ROWS) - 1].spec().scale();
                    setOf[count++] = setPlace[entry >>> 24];
                }
                place[t] = placeOfId[id];
            }
            return new ResidentGroups(sets, Arrays.copyOf(adapterIds, count), Arrays.copyOf(setOf, count),
                    Arrays.copyOf(scaleOf, count), TokenRows.bySlot(place, count));
        }

        /**
         * Records that id's adapter sits in row {@code slot} of set {@code number}, on the host and on the device
         * (called while no kernel reads the entries: from an upload).
         */
        private void enter(int id, int number, int slot) {
            if (id >= MAX_ENTRY_ID || number >= MAX_ENTRY_SETS || slot >= MAX_ENTRY_ROWS) {
                return; // that adapter's calls take the resolved path
            }
            if (id >= entries.length) {
                int length = Math.min(MAX_ENTRY_ID, Math.max(64, Integer.highestOneBit(id) << 1));
                DeviceBuffer bigger = context.allocate(DType.FLOAT32, length); // 4-byte elements
                cuMemsetD32(NativeHandles.devicePointer(bigger.array().address()), 0, length);
                if (entryTable != null) {
                    cuMemcpyDtoD(NativeHandles.devicePointer(bigger.array().address()),
                            NativeHandles.devicePointer(entryTable.array().address()), 4L * entries.length);
                    outgrownEntries.add(entryTable);
                }
                entryTable = bigger;
                entries = Arrays.copyOf(entries, length);
            }
            int entry = entry(number, slot);
            entries[id] = entry;
            cuMemcpyHtoD(NativeHandles.devicePointer(entryTable.array().address() + 4L * id),
                    Pointer.to(new int[] {entry}), 4);
        }

        /** The entry of row {@code slot} of set {@code number}, as fourierft_token_rows reads it. */
        private static int entry(int number, int slot) {
            return (number << 24) | (slot + 1);
        }

        /** Clears id's host entry where it names that slot of that set (its adapter left the pool). */
        private void leave(int id, int number, int slot) {
            if (id < entries.length && entries[id] == entry(number, slot)) {
                entries[id] = 0;
            }
        }

        /** Frees the retired slots and outgrown buffers of every set, after the device has finished its work. */
        private void reclaim() {
            cuCtxSynchronize();
            for (DeviceBuffer b : outgrownEntries) {
                b.close();
            }
            outgrownEntries.clear();
            for (SetTable t : sets.values()) {
                t.free.addAll(t.retired);
                t.retired.clear();
                for (DeviceBuffer b : t.outgrown) {
                    b.close();
                }
                t.outgrown.clear();
            }
        }

        long bytes() {
            long bytes = 0;
            for (SetTable t : sets.values()) {
                bytes += t.table == null ? 0 : 4L * t.capacity * (t.n + 1L);
            }
            return bytes;
        }

        private void close() {
            closed = true;
            for (SetTable t : sets.values()) {
                t.close();
            }
            sets.clear();
            numbered.clear();
            if (entryTable != null) {
                entryTable.close();
            }
            for (DeviceBuffer b : outgrownEntries) {
                b.close();
            }
            outgrownEntries.clear();
        }
    }

    /**
     * A call's view of the tables: per index set of the batch its table's address and its rows' scales' (device
     * floats, α/(2·d_out·d_in) per row), per distinct adapter (in the batch's order) its row in its set's table.
     */
    record Slots(long[] tables, long[] halfScales, int[] rows, int[][] tokenRows) {
        /**
         * Set {@code s}'s device rows per token (made by {@code make} the first time; kept with these slots, so a
         * call that gets the same slots back reuses them); call with the copy's lock held.
         */
        int[] tokenRows(int s, java.util.function.IntFunction<int[]> make) {
            if (tokenRows[s] == null) {
                tokenRows[s] = make.apply(s);
            }
            return tokenRows[s];
        }
    }

    /**
     * A call's sets when all its adapters are on the device ({@link PoolCopy#resident}): per set present, in the order
     * of their numbers, the number, the index set, the table's address and its rows' scales' (as {@link Slots}); and
     * the device entries' address (0 when every id is −1).
     */
    record Resident(int[] numbers, FourierFTSpec[] specs, long[] tables, long[] halfScales, long entries) {
        /** @return the sets among the call's tokens (0: every id is −1) */
        int sets() {
            return numbers.length;
        }
    }

    /**
     * A backward's view of a call whose adapters are all on the device ({@link PoolCopy#residentGroups}): its sets,
     * its distinct adapters in order of first use (ids, each one's set as its place in {@code sets}, and each one's
     * scale α/(d_out·d_in)), and its tokens grouped by adapter in that order.
     */
    record ResidentGroups(Resident sets, int[] adapterIds, int[] setOf, float[] scaleOf, TokenRows.Groups byAdapter) {
    }

    /** One index set's table in one pool's copy. */
    private final class SetTable {
        /** The index set ({@link ResolvedBatch#set}: α NaN; each row's scale is in {@link #halfScales}). */
        private final FourierFTSpec spec;
        /** Its place in its copy's {@code numbered}. */
        private final int number;
        private final int n;
        private DeviceBuffer table;
        /** Per row its adapter's α/(2·d_out·d_in) on the device, as the kernels scale by it (capacity floats). */
        private DeviceBuffer halfScales;
        private int capacity;
        private int used;
        private final IdentityHashMap<FourierFTAdapterPool.Adapter, Integer> slots = new IdentityHashMap<>();
        /** Per slot the adapter in it (null: free or retired), as {@link #slots} holds it. */
        private FourierFTAdapterPool.Adapter[] holders = new FourierFTAdapterPool.Adapter[0];
        /**
         * id → a slot that held an adapter of that id: a call looks its adapters up by the ids it resolved, each
         * confirmed by comparing the slot's holder with the adapter, so that it reads neither the adapter nor a boxed
         * slot (scattered objects: with thousands of adapters per call those reads are most of the lookup's time).
         * {@link #slots} decides where the two differ (an id removed and added again). Emptied when adapters are
         * retired, so it holds no more ids than {@link #slots} has held since.
         */
        private final IdTable byId = new IdTable(16);
        private final ArrayDeque<Integer> free = new ArrayDeque<>();
        private final List<Integer> retired = new ArrayList<>();
        private final List<DeviceBuffer> outgrown = new ArrayList<>();

        SetTable(FourierFTSpec spec, int number) {
            this.spec = spec;
            this.number = number;
            this.n = spec.n();
        }

        /**
         * The slot of an adapter a call resolved, or −1 if it is not in this table.
         *
         * @param id its id, as the call resolved it
         * @param a the adapter
         */
        int slotOf(int id, FourierFTAdapterPool.Adapter a) {
            int slot = byId.get(id);
            if (slot >= 0 && holders[slot] == a) {
                return slot;
            }
            Integer s = slots.get(a);
            if (s == null) {
                return -1;
            }
            byId.put(id, s);
            return s;
        }

        /** Moves the slots of adapters no longer in the pool to retired (freed at the next reclaim). */
        void retireRemoved(FourierFTAdapterPool pool, PoolCopy copy) {
            int before = retired.size();
            slots.entrySet().removeIf(e -> {
                if (pool.holds(e.getKey())) {
                    return false;
                }
                copy.leave(e.getKey().id(), number, e.getValue());
                retired.add(e.getValue());
                holders[e.getValue()] = null;
                return true;
            });
            if (retired.size() > before) {
                byId.clear(); // filled again by the next lookups; ids gone for good leave no entries behind
            }
        }

        /** Puts a's coefficients into a free slot (reclaiming retired ones, or growing the table, first). */
        int upload(FourierFTAdapterPool.Adapter a, PoolCopy copy) {
            if (free.isEmpty() && used == capacity) {
                if (!retired.isEmpty()) {
                    copy.reclaim();
                } else {
                    grow();
                }
            }
            int slot = free.isEmpty() ? used++ : free.pop();
            float[] c = a.coefficientsCopy();
            cuMemcpyHtoD(NativeHandles.devicePointer(table.array().address() + 4L * slot * n), Pointer.to(c), 4L * n);
            cuMemcpyHtoD(NativeHandles.devicePointer(halfScales.array().address() + 4L * slot),
                    Pointer.to(new float[] {0.5f * a.spec().scale()}), 4);
            slots.put(a, slot);
            holders[slot] = a;
            byId.put(a.id(), slot);
            copy.enter(a.id(), number, slot);
            return slot;
        }

        private void grow() {
            int next = Math.max(FIRST_CAPACITY, 2 * capacity);
            DeviceBuffer bigger = context.allocate(DType.FLOAT32, (long) next * n);
            DeviceBuffer biggerScales = context.allocate(DType.FLOAT32, next);
            if (table != null) {
                cuMemcpyDtoD(NativeHandles.devicePointer(bigger.array().address()),
                        NativeHandles.devicePointer(table.array().address()), 4L * used * n);
                cuMemcpyDtoD(NativeHandles.devicePointer(biggerScales.array().address()),
                        NativeHandles.devicePointer(halfScales.array().address()), 4L * used);
                cuStreamSynchronize(CudaStream.legacyDefault().jcuda());
                outgrown.add(table); // queued kernels may still read them: freed at the next reclaim
                outgrown.add(halfScales);
            }
            table = bigger;
            halfScales = biggerScales;
            capacity = next;
            holders = Arrays.copyOf(holders, next);
        }

        void close() {
            if (table != null) {
                table.close();
                halfScales.close();
            }
            for (DeviceBuffer b : outgrown) {
                b.close();
            }
        }
    }

    /**
     * The copy of a pool, made empty on first use; frees the copies of pools that were collected.
     *
     * @param pool the pool
     * @return its copy; lock it around {@link PoolCopy#slots} and the launches that follow
     */
    PoolCopy of(FourierFTAdapterPool pool) {
        synchronized (copies) {
            PoolCopy c = copies.get(pool);
            if (c == null) {
                freeCollected();
                c = new PoolCopy(pool);
                copies.put(pool, c);
                all.add(c);
            }
            return c;
        }
    }

    /**
     * Device bytes held for a pool's coefficients and their scales (the tables' capacity, 4·(n + 1) bytes a row, so
     * up to twice the rows in use).
     *
     * @param pool the pool
     * @return bytes, 0 if no call has used the pool
     */
    long bytes(FourierFTAdapterPool pool) {
        PoolCopy c;
        synchronized (copies) {
            c = copies.get(pool);
        }
        if (c == null) {
            return 0;
        }
        synchronized (c) {
            return c.bytes();
        }
    }

    private void freeCollected() {
        all.removeIf(c -> {
            if (c.owner.get() != null) {
                return false;
            }
            synchronized (c) {
                cuCtxSynchronize();
                c.close();
            }
            return true;
        });
    }

    /** Frees every copy (the backend is closing; its context is current and idle). */
    @Override
    public void close() {
        synchronized (copies) {
            for (PoolCopy c : all) {
                synchronized (c) {
                    c.close();
                }
            }
            all.clear();
            copies.clear();
        }
    }
}
