//! The epoch ticker that bounds a guest's run time. Wasmtime interrupts a guest once the
//! engine's epoch passes the store's deadline; this advances the epoch every
//! [`EPOCH_TICK`], but only while a guest runs, so an idle server does no periodic work.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use wasmtime::Engine;

/// How often the epoch advances while a guest runs. Deadlines are whole ticks, so a
/// timeout overshoots by at most one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// The ticker of one engine; it stops when the last clone of its owner is dropped.
#[derive(Debug)]
pub struct Ticker {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Guests running now.
    running: AtomicUsize,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct State {
    parked: bool,
    closed: bool,
}

/// A guest running: the epoch advances until every guard is dropped.
pub struct Running<'a>(&'a Shared);

impl Ticker {
    /// Starts the ticker thread of `engine`, parked until a guest runs.
    pub fn start(engine: &Engine) -> Self {
        let shared = Arc::new(Shared::default());
        let thread = Arc::clone(&shared);
        let engine = engine.weak();
        std::thread::Builder::new()
            .name("tocsin-epoch".into())
            .spawn(move || {
                loop {
                    let mut state = thread.state.lock().expect("ticker lock");
                    while thread.running.load(Ordering::Acquire) == 0 && !state.closed {
                        state.parked = true;
                        state = thread.wake.wait(state).expect("ticker lock");
                        state.parked = false;
                    }
                    if state.closed {
                        return;
                    }
                    drop(state);
                    std::thread::sleep(EPOCH_TICK);
                    match engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            })
            .expect("spawn the epoch ticker");
        Self { shared }
    }

    /// Marks a guest as running for as long as the guard lives.
    pub fn running(&self) -> Running<'_> {
        if self.shared.running.fetch_add(1, Ordering::AcqRel) == 0 {
            let state = self.shared.state.lock().expect("ticker lock");
            if state.parked {
                self.shared.wake.notify_one();
            }
        }
        Running(&self.shared)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.state.lock().expect("ticker lock").closed = true;
        self.shared.wake.notify_one();
    }
}
