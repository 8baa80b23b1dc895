//! Run-time selection of AVX-512 or AVX2 + FMA for host loops: the crate is built for baseline
//! x86-64, whose narrow vectors and separate multiplies and adds run the recurrences at a
//! quarter of the speed, so each hot loop is compiled again for the wide units and the widest
//! copy the CPU has is picked at run time.

/// Compiles `$body` again with AVX-512F (and AVX2, FMA) and with AVX2 + FMA (`$body::<true>`,
/// fused multiply-adds) and picks the widest copy the CPU runs.
macro_rules! simd_dispatch {
    ($(#[$m:meta])* fn $name:ident => $body:ident ($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)?) => {
        $(#[$m])*
        fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn wide512($($arg: $ty),*) $(-> $ret)? {
                    $body::<true>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn wide($($arg: $ty),*) $(-> $ret)? {
                    $body::<true>($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has the features `wide512` is compiled for.
                    return unsafe { wide512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has the features `wide` is compiled for.
                    return unsafe { wide($($arg),*) };
                }
            }
            $body::<false>($($arg),*)
        }
    };
}

/// `a·b + c`, as one fused instruction where the caller is compiled with FMA (`FMA`; elsewhere
/// `mul_add` is a slow library call).
#[inline(always)]
pub(crate) fn mul_add<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

pub(crate) use simd_dispatch;

/// `a·b + c` in f64, as [`mul_add`] does in f32.
#[inline(always)]
pub(crate) fn mul_add64<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}
