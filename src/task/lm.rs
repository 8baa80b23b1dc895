//! Language modeling: cross-entropy of the next token at every step; token accuracy and
//! perplexity.

use serde::{Deserialize, Serialize};

/// Options of `lm` (none yet).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LmConfig {}
