//! Transposes through 16×16 tiles, and the shared destination that lets parallel tasks
//! scatter disjoint channel blocks into one [B,L,H] buffer.

/// Side of the square tile the transposes go through: 16 f32 are one 64-byte cache line.
pub(crate) const TILE: usize = 16;

/// Where a transpose writes: `row(at, n)` is the `n` destination elements from offset `at`.
pub(crate) trait Dst {
    /// The destination elements `at..at + n`.
    fn row(&mut self, at: usize, n: usize) -> &mut [f32];
}

impl Dst for [f32] {
    fn row(&mut self, at: usize, n: usize) -> &mut [f32] {
        &mut self[at..][..n]
    }
}

/// A buffer that several tasks write at once, each only its own elements (a block of channels
/// of a [B,L,H] array).
#[derive(Clone, Copy)]
pub(crate) struct Shared {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: tasks sharing a `Shared` write disjoint elements (see `at`), and the buffer outlives
// the parallel loop that uses it.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// `v`, to be written by several tasks.
    pub(crate) fn new(v: &mut [f32]) -> Self {
        Self { ptr: v.as_mut_ptr(), len: v.len() }
    }

    /// The buffer from offset `start` on, as a transpose destination.
    ///
    /// # Safety
    /// No other task may read or write, while the result lives, any element this one writes.
    pub(crate) unsafe fn at(&self, start: usize) -> SharedFrom {
        SharedFrom { buf: *self, start }
    }
}

/// [`Shared`] from an offset on.
pub(crate) struct SharedFrom {
    buf: Shared,
    start: usize,
}

impl Dst for SharedFrom {
    fn row(&mut self, at: usize, n: usize) -> &mut [f32] {
        let at = self.start + at;
        assert!(at + n <= self.buf.len, "transpose row {at}+{n} past the buffer ({})", self.buf.len);
        // SAFETY: in bounds (checked above), and by `Shared::at`'s contract no other task
        // touches these elements while the slice lives.
        unsafe { std::slice::from_raw_parts_mut(self.buf.ptr.add(at), n) }
    }
}

/// `dst[c·dst_stride + r] = src[r·src_stride + c]` for `r < rows`, `c < cols`, through a
/// `TILE`×`TILE` block on the stack. Every source and destination line is read or written whole
/// in one go and never revisited, so the power-of-two strides that long sequences have (rows
/// 2^k·4 bytes apart share one cache set) cannot thrash the cache, as a plain strided loop does
/// from L = 16k on.
pub(crate) fn transpose_into(
    src: &[f32],
    src_stride: usize,
    dst: &mut (impl Dst + ?Sized),
    dst_stride: usize,
    rows: usize,
    cols: usize,
) {
    let mut tile = [[0f32; TILE]; TILE];
    for r0 in (0..rows).step_by(TILE) {
        let nr = TILE.min(rows - r0);
        for c0 in (0..cols).step_by(TILE) {
            let nc = TILE.min(cols - c0);
            for (r, t) in tile.iter_mut().enumerate().take(nr) {
                let s = &src[(r0 + r) * src_stride + c0..][..nc];
                // A whole line as a fixed-size copy: inlined, where a slice copy calls `memmove`.
                match <&[f32; TILE]>::try_from(s) {
                    Ok(full) => *t = *full,
                    Err(_) => t[..nc].copy_from_slice(s),
                }
            }
            for c in 0..nc {
                let d = dst.row((c0 + c) * dst_stride + r0, nr);
                for (v, t) in d.iter_mut().zip(&tile) {
                    *v = t[c];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whole and partial tiles, square and not, against the index formula.
    #[test]
    fn transpose_into_is_the_transpose() {
        for (rows, cols) in [(16, 16), (32, 48), (19, 50), (1, 33), (47, 1), (64, 17)] {
            let (ss, ds) = (cols + 3, rows + 5);
            let src: Vec<f32> = (0..rows * ss).map(|i| i as f32 * 0.5 - 7.0).collect();
            let mut dst = vec![f32::NAN; cols * ds];
            transpose_into(&src, ss, &mut dst[..], ds, rows, cols);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(dst[c * ds + r], src[r * ss + c], "{rows}x{cols} at ({r}, {c})");
                }
            }
        }
    }
}
