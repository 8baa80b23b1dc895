//! The Mamba-2 golden file: the chunked SSD scan (`mamba2_ssd`), at the file's block length and
//! at a block length that does not divide the sequence.

use burn::tensor::Tensor;
use wavessm::model::ssm::ssd::{SsdArgs, ssd};

use crate::common::{self, Golden, host, tensor};

/// `ssd_minimal_discrete(X, A, B, C, block_len)`: output and final state.
pub fn check_ssd(g: &Golden) {
    let device = common::device();
    let block = g.cfg_usize("block_len");
    for chunk in [block, block + 3] {
        let (y, last) = ssd(SsdArgs {
            x: tensor::<4>(g.input("X"), &device),
            a: tensor::<3>(g.input("A"), &device),
            b: tensor::<4>(g.input("B"), &device),
            c: tensor::<4>(g.input("C"), &device),
            h0: None::<Tensor<4>>,
            chunk,
        });
        let worst = [("Y", host(y)), ("final_state", host(last))]
            .iter()
            .map(|(key, v)| g.check(&format!("{key} (chunk {chunk})"), v, g.output(key)))
            .fold(0.0, f64::max);
        println!("{} (chunk {chunk}): worst |diff| / tol = {worst:.3}", g.name);
    }
}
