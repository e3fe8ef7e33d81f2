//! The guest's allocator: free lists by size class, carved from 16 KiB chunks.
//!
//! An evaluation allocates and frees a few dozen small blocks (argument strings, attribute
//! maps, the summary, the report) and returns. Under wasm32-wasip2's libc dlmalloc, those
//! calls were a fifth of a built-in template's time in the sandbox; talc, tried in its
//! place, was a sixth. Here a block of up to 4 KiB comes off its class's free list or the
//! end of the current chunk, and goes back on the list when freed: a handful of
//! instructions each way, with no splitting or coalescing. Memory a class once held stays
//! with the class, which suits a template: its instance lives for one evaluation or one
//! batch, and each evaluation uses about what the one before it used. Larger blocks, and
//! the chunks themselves, come from the system allocator.
//!
//! Only for single-threaded wasm, where no two calls can ever overlap.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// The smallest class; every block is aligned to it.
const MIN: usize = 16;
/// Classes of 16, 32, … 4096 bytes.
const CLASSES: usize = 9;
const MAX_SMALL: usize = MIN << (CLASSES - 1);
/// Small enough that a fresh instance's first chunk costs little: with 64 KiB chunks an
/// isolated evaluation measured slower than under dlmalloc.
const CHUNK: usize = 16 << 10;

struct Heap {
    /// The first free block of each class; a free block holds the next one's address.
    free: [*mut u8; CLASSES],
    /// The unused rest of the current chunk.
    next: *mut u8,
    end: *mut u8,
}

/// The allocator every component built with the SDK runs on.
pub struct Allocator(UnsafeCell<Heap>);

// SAFETY: built only for wasm32 without the atomics feature, which has a single thread.
unsafe impl Sync for Allocator {}

impl Allocator {
    /// An empty heap; chunks are taken as blocks are first asked for.
    pub const fn new() -> Self {
        Self(UnsafeCell::new(Heap {
            free: [ptr::null_mut(); CLASSES],
            next: ptr::null_mut(),
            end: ptr::null_mut(),
        }))
    }
}

impl Default for Allocator {
    fn default() -> Self {
        Self::new()
    }
}

/// The class serving `layout`, or `None` for a block the system allocator serves.
fn class(layout: Layout) -> Option<usize> {
    if layout.size() > MAX_SMALL || layout.align() > MIN {
        return None;
    }
    let size = layout.size().max(MIN).next_power_of_two();
    Some((size.trailing_zeros() - MIN.trailing_zeros()) as usize)
}

fn chunk_layout() -> Layout {
    Layout::from_size_align(CHUNK, MIN).expect("a valid chunk layout")
}

impl Heap {
    /// A block of class `c`: a freed one, or a new one from the current chunk.
    ///
    /// # Safety
    /// No other reference to the heap may be live.
    unsafe fn take(&mut self, c: usize) -> *mut u8 {
        let head = self.free[c];
        if !head.is_null() {
            // SAFETY: a free block of this class holds the next free block's address.
            self.free[c] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        let size = MIN << c;
        if (self.end as usize) - (self.next as usize) < size {
            // The rest of the old chunk is too small for this class; it is left unused,
            // which wastes under 4 KiB per chunk.
            // SAFETY: the layout has a nonzero size.
            let chunk = unsafe { System.alloc(chunk_layout()) };
            if chunk.is_null() {
                return chunk;
            }
            self.next = chunk;
            // SAFETY: the chunk is CHUNK bytes long.
            self.end = unsafe { chunk.add(CHUNK) };
        }
        let block = self.next;
        // SAFETY: checked above that `size` bytes remain in the chunk.
        self.next = unsafe { block.add(size) };
        block
    }

    /// Puts a block of class `c` on its free list.
    ///
    /// # Safety
    /// `block` came from `take(c)` and is no longer used.
    unsafe fn give(&mut self, c: usize, block: *mut u8) {
        // SAFETY: every block is at least MIN bytes and MIN-aligned, room for a pointer.
        unsafe { block.cast::<*mut u8>().write(self.free[c]) };
        self.free[c] = block;
    }
}

// SAFETY: blocks of a class are disjoint, MIN-aligned and at least as large as any layout
// the class serves; each is handed out once until it is freed again.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class(layout) {
            // SAFETY: single-threaded, and no heap reference outlives a call.
            Some(c) => unsafe { (*self.0.get()).take(c) },
            // SAFETY: the caller's layout has a nonzero size.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class(layout) {
            // SAFETY: the block was allocated with this layout, hence from this class.
            Some(c) => unsafe { (*self.0.get()).give(c, block) },
            // SAFETY: as above, from the system allocator.
            None => unsafe { System.dealloc(block, layout) },
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees a nonzero size that does not overflow with `align`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class(layout), class(new_layout)) {
            (Some(old), Some(new)) if old == new => block,
            // SAFETY: both blocks are the system allocator's.
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            _ => {
                // SAFETY: a fresh block for the new layout, then the old one's bytes.
                unsafe {
                    let moved = self.alloc(new_layout);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                    moved
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_sizes_up_to_4_kib_with_small_alignment() {
        let c = |size, align| class(Layout::from_size_align(size, align).unwrap());
        assert_eq!(c(1, 1), Some(0));
        assert_eq!(c(16, 8), Some(0));
        assert_eq!(c(17, 1), Some(1));
        assert_eq!(c(4096, 16), Some(8));
        assert_eq!(c(4097, 1), None);
        assert_eq!(c(8, 32), None);
    }

    #[test]
    fn blocks_are_reused_and_keep_their_contents_when_moved() {
        let heap = Allocator::new();
        let small = Layout::from_size_align(24, 8).unwrap();
        // SAFETY: each block is used within its layout and freed once.
        unsafe {
            let a = heap.alloc(small);
            let b = heap.alloc(small);
            assert_ne!(a, b);
            assert_eq!(a as usize % MIN, 0);
            heap.dealloc(a, small);
            assert_eq!(
                heap.alloc(small),
                a,
                "a freed block serves the next request"
            );
            a.write_bytes(7, 24);
            let grown = heap.realloc(a, small, 5000);
            assert_eq!(std::slice::from_raw_parts(grown, 24), &[7; 24]);
            heap.dealloc(grown, Layout::from_size_align(5000, 8).unwrap());
            heap.dealloc(b, small);
        }
    }
}
