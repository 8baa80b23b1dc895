//! Single-threaded GEMM on strided views of host buffers, through `gemm`, for kernels that
//! are parallel themselves (over attention heads, over row blocks of a Linear layer): every
//! index a view's strides reach is checked against its buffer before the product runs.

/// A row-major or transposed read of a matrix: element (r, c) at `data[r·rs + c·cs]`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    /// The values.
    pub data: &'a [f32],
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

/// `a` read as a row-major matrix with rows of `cols` values.
pub(crate) fn rows(data: &[f32], cols: usize) -> View<'_> {
    View { data, rs: cols, cs: 1 }
}

/// The transpose of the row-major matrix `data` with rows of `cols` values.
pub(crate) fn transposed(data: &[f32], cols: usize) -> View<'_> {
    View { data, rs: 1, cs: cols }
}

/// `dst[m, n] (+)= beta·a[m, k]·b[k, n]` into a row-major local buffer with rows of `n` values.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(dst: &mut [f32], m: usize, n: usize, k: usize, a: View, b: View, beta: f32, acc: bool) {
    assert!(dst.len() >= m * n);
    // SAFETY: `dst` holds the m·n values written, and does not alias `a` or `b`.
    unsafe { matmul_into((dst.as_mut_ptr(), dst.len(), n), m, n, k, a, b, beta, acc) }
}

/// `dst[m, n] (+)= beta·a[m, k]·b[k, n]`, `dst` = (pointer, floats after it, row stride); `acc`
/// adds to `dst` instead of overwriting it. One thread: the callers are parallel (over heads,
/// or over row blocks).
///
/// # Safety
/// No other thread may touch the m rows of `n` values the destination describes while this
/// runs, and they must not overlap `a` or `b`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn matmul_into(
    dst: (*mut f32, usize, usize),
    m: usize,
    n: usize,
    k: usize,
    a: View,
    b: View,
    beta: f32,
    acc: bool,
) {
    let (ptr, room, rs) = dst;
    if m == 0 || n == 0 {
        return;
    }
    assert!(room >= (m - 1) * rs + n, "matmul: destination too small");
    if k == 0 {
        if !acc {
            // SAFETY: the assertion above keeps every row inside the destination.
            (0..m).for_each(|r| unsafe { std::slice::from_raw_parts_mut(ptr.add(r * rs), n) }.fill(0.0));
        }
        return;
    }
    let last = |v: &View, r: usize, c: usize| (r - 1) * v.rs + (c - 1) * v.cs;
    assert!(a.data.len() > last(&a, m, k) && b.data.len() > last(&b, k, n), "matmul: operand too small");
    // SAFETY: the assertions keep every index the strides reach inside the buffers; the
    // caller guarantees the destination is this thread's alone.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            ptr,
            1,
            rs as isize,
            acc,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            beta,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}
