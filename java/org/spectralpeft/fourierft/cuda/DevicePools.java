package org.spectralpeft.fourierft.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoD;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
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
import org.spectralpeft.cuda.CudaContext;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.cuda.internal.NativeHandles;
import org.spectralpeft.fourierft.FourierFTAdapterPool;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.fourierft.ResolvedBatch;

/**
 * The device copies of the adapter pools a CUDA backend serves: per pool and index set, one growable table of
 * n-coefficient rows, a row (slot) per adapter, uploaded the first time a call uses the adapter and kept, so that
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
 */
final class DevicePools implements AutoCloseable {
    /** Rows of a set's first table; it doubles when full. */
    static final int FIRST_CAPACITY = 16;

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
                    t.retireRemoved(pool);
                }
                seenVersion = version;
                changes++;
            }
            if (batch == lastBatch && changes == lastChanges) {
                return lastSlots;
            }
            SetTable[] tables = new SetTable[batch.setCount()];
            for (int s = 0; s < tables.length; s++) {
                tables[s] = sets.computeIfAbsent(batch.set(s), spec -> new SetTable(spec.n()));
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
            for (int s = 0; s < tables.length; s++) { // after the uploads: a table may have grown
                addresses[s] = tables[s].table.array().address();
            }
            if (uploaded) {
                cuStreamSynchronize(CudaStream.legacyDefault().jcuda()); // the rows are on the device before use
                changes++;
            }
            lastBatch = batch;
            lastSlots = new Slots(addresses, rows, new int[tables.length][]);
            lastChanges = changes;
            return lastSlots;
        }

        /** Frees the retired slots and outgrown buffers of every set, after the device has finished its work. */
        private void reclaim() {
            cuCtxSynchronize();
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
                bytes += t.table == null ? 0 : 4L * t.capacity * t.n;
            }
            return bytes;
        }

        private void close() {
            closed = true;
            for (SetTable t : sets.values()) {
                t.close();
            }
            sets.clear();
        }
    }

    /**
     * A call's view of the tables: per index set of the batch its table's address, per distinct adapter (in the
     * batch's order) its row in its set's table.
     */
    record Slots(long[] tables, int[] rows, int[][] tokenRows) {
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

    /** One index set's table in one pool's copy. */
    private final class SetTable {
        private final int n;
        private DeviceBuffer table;
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

        SetTable(int n) {
            this.n = n;
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
        void retireRemoved(FourierFTAdapterPool pool) {
            int before = retired.size();
            slots.entrySet().removeIf(e -> {
                if (pool.holds(e.getKey())) {
                    return false;
                }
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
            slots.put(a, slot);
            holders[slot] = a;
            byId.put(a.id(), slot);
            return slot;
        }

        private void grow() {
            int next = Math.max(FIRST_CAPACITY, 2 * capacity);
            DeviceBuffer bigger = context.allocate(DType.FLOAT32, (long) next * n);
            if (table != null) {
                cuMemcpyDtoD(NativeHandles.devicePointer(bigger.array().address()),
                        NativeHandles.devicePointer(table.array().address()), 4L * used * n);
                cuStreamSynchronize(CudaStream.legacyDefault().jcuda());
                outgrown.add(table); // queued kernels may still read it: freed at the next reclaim
            }
            table = bigger;
            capacity = next;
            holders = Arrays.copyOf(holders, next);
        }

        void close() {
            if (table != null) {
                table.close();
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
     * Device bytes held for a pool's coefficients (the tables' capacity, so up to twice the rows in use).
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
