//! Background threads. They keep derived state current (the Related lists,
//! recommendation neighbours, the removal of deleted articles' views), and
//! must not take the cores from the threads that answer requests.

use std::thread::{self, JoinHandle};

/// How much lower than the request threads background threads run: a nice
/// value of 10 gets about a tenth of a core that requests also want, and all
/// of one they leave idle.
const NICENESS: i32 = 10;

/// Starts a named thread that runs `work` at a lower scheduling priority.
pub fn spawn<F>(name: &str, work: F) -> std::io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    thread::Builder::new().name(name.into()).spawn(move || {
        lower_priority();
        work();
    })
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: plain system calls with no pointers. On Linux a thread id given
    // to `setpriority` names that thread alone, and raising one's own nice
    // value needs no privilege.
    let result = unsafe {
        let thread = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, NICENESS)
    };
    if result != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower a background thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}
