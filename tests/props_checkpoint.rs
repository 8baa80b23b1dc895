//! Property tests over the checkpoint format (10,000 cases; `PROPTEST_CASES` changes that):
//! mutated files never panic the reader, whatever it accepts passes its range checks and
//! round-trips, and any one-byte change inside the header is caught by its checksum.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::Config;
use wavessm::train::checkpoint::{Checkpoint, TrainerState};
use wavessm::train::scheduler::ScheduleState;

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(10_000);
    Config { cases, failure_persistence: None, ..Config::default() }
}

fn sample() -> Checkpoint {
    let state = TrainerState {
        epoch: 3,
        step: 90,
        best: Some((0.875, 2)),
        metrics: [("val/accuracy".to_string(), 0.875), ("val/loss".to_string(), 0.4)].into(),
        batch: 0,
        ..TrainerState::fresh(vec![ScheduleState::default()], "seed: 0\nmodel: {d_model: 8}\n".into())
    };
    Checkpoint { state, model: (0..64u8).collect(), optimizer: vec![7; 48] }
}

/// The header's byte range: after the 16-byte preamble, `len` bytes.
fn header_len(bytes: &[u8]) -> usize {
    u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_checkpoints_are_refused_or_sound(
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in prop::option::of(any::<usize>()),
    ) {
        let mut b = sample().to_bytes();
        for (i, v) in &edits {
            let n = b.len();
            b[i % n] = *v;
        }
        if let Some(c) = cut {
            b.truncate(c % (b.len() + 1));
        }
        if let Ok(ck) = Checkpoint::from_bytes(&b, Path::new("x.bpk")) {
            prop_assert!(ck.state.check().is_ok());
            prop_assert_eq!(Checkpoint::from_bytes(&ck.to_bytes(), Path::new("x.bpk")).unwrap().state, ck.state);
        }
    }

    #[test]
    fn any_one_byte_change_in_the_header_is_caught(at in any::<usize>(), flip in 1u8..=255) {
        let good = sample().to_bytes();
        let at = 16 + at % header_len(&good);
        let mut b = good.clone();
        b[at] ^= flip;
        let err = Checkpoint::from_bytes(&b, Path::new("x.bpk")).unwrap_err().to_string();
        prop_assert!(err.contains("x.bpk"), "{}", err);
    }
}
