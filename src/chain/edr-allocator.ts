/**
 * EDR's allocator (mimalloc, linked into its native module) gives freed
 * memory back to the OS a second after it is freed, and EDR allocates a
 * per-step trace for every call and transaction it runs (upstream:
 * NomicFoundation/edr#1657). Under load the chain thread so spent a third of
 * its time in the kernel, faulting in and zeroing pages it had just given
 * back: 0.7 s of system time per 700 tasks against 0.3 s with purging off,
 * for about 80 MB more resident memory at peak (1000 tasks at once).
 *
 * mimalloc reads its options once, when EDR's module loads, so this module is
 * imported before Hardhat (local-chain.ts). An operator's own
 * MIMALLOC_PURGE_DELAY wins.
 */
process.env.MIMALLOC_PURGE_DELAY ??= "-1";
