//! Background threads that must not take the CPU from the write path: on a two-core server the
//! read-model runner and the log's late writer would otherwise be scheduled as often as the
//! writer and the request threads whose latency the callers see.

/// Lowers the calling thread's scheduling priority to `nice` (Linux: nice applies per thread).
pub(crate) fn lower_this_thread(nice: i32) {
    // SAFETY: setpriority with PRIO_PROCESS and the calling thread's id only changes this
    // thread's nice value; it has no memory effects. Failure leaves the priority as it was.
    unsafe {
        let thread = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, thread, nice);
    }
}
