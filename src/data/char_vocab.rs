//! Character vocabulary as the S4 repo builds it for LRA Text (`tokenizer_type: char`,
//! torchtext's `build_vocab_from_iterator`): `<pad>`, `<unk>`, optional `<bos>`/`<eos>`, then
//! every character seen at least `min_freq` times in the training documents, most frequent
//! first (ties by character). Other characters become `<unk>`.

use std::collections::HashMap;

/// Id of `<pad>` (also the padding of shorter documents).
pub const PAD: u32 = 0;
/// Id of `<unk>`.
pub const UNK: u32 = 1;

/// A character vocabulary with its special tokens.
#[derive(Debug, Clone)]
pub struct CharVocab {
    ids: HashMap<char, u32>,
    bos: Option<u32>,
    eos: Option<u32>,
    size: usize,
}

impl CharVocab {
    /// Counts the characters of `docs`, each cut to the characters [`CharVocab::encode`] keeps
    /// of `max_len` tokens (S4 truncates before it counts).
    pub fn build<'a>(
        docs: impl IntoIterator<Item = &'a str>,
        min_freq: usize,
        bos: bool,
        eos: bool,
        max_len: usize,
    ) -> Self {
        let keep = max_len.saturating_sub(bos as usize + eos as usize);
        let mut counts: HashMap<char, usize> = HashMap::new();
        for doc in docs {
            for c in doc.chars().take(keep) {
                *counts.entry(c).or_default() += 1;
            }
        }
        let mut chars: Vec<(char, usize)> = counts.into_iter().filter(|(_, n)| *n >= min_freq.max(1)).collect();
        chars.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut next = UNK + 1;
        let mut special = |on: bool| {
            on.then(|| {
                next += 1;
                next - 1
            })
        };
        let (bos, eos) = (special(bos), special(eos));
        let ids: HashMap<char, u32> = chars.iter().enumerate().map(|(i, (c, _))| (*c, next + i as u32)).collect();
        Self { size: next as usize + ids.len(), ids, bos, eos }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.size
    }

    /// Whether only the special tokens exist.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The id of a character (`<unk>` when unknown).
    pub fn id(&self, c: char) -> u32 {
        self.ids.get(&c).copied().unwrap_or(UNK)
    }

    /// `[<bos>] chars [<eos>]`, the characters cut so that at most `max_len` ids result.
    pub fn encode(&self, doc: &str, max_len: usize) -> Vec<u32> {
        let keep = max_len.saturating_sub(self.bos.is_some() as usize + self.eos.is_some() as usize);
        self.bos.into_iter().chain(doc.chars().take(keep).map(|c| self.id(c))).chain(self.eos).collect()
    }
}
