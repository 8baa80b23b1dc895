//! ListOps (Nangia & Bowman 2018, as in Long Range Arena): nested MIN/MAX/MED/SM expressions
//! over digits; the label is the value. Reads the LRA files `basic_{train,val,test}.tsv`
//! (`Source\tTarget` header) and generates new ones with the LRA procedure.
//!
//! Tokenization follows the S4 repo: parentheses are dropped and `]` becomes `X`, leaving
//! operators, digits and closing marks.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{DataError, DataModule, SeqData, Targets, data_dir, read_text};

/// Token ids: 0 pads; the rest in this order.
pub const VOCAB: [&str; 18] =
    ["<pad>", "[MIN", "[MAX", "[MED", "[SM", "[FIRST", "[LAST", "X", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Vocabulary size.
pub const VOCAB_SIZE: usize = VOCAB.len();

/// The id of a token, if it is one.
pub fn token_id(tok: &str) -> Option<usize> {
    VOCAB.iter().position(|t| *t == tok)
}

/// Options of `listops`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListOpsConfig {
    /// Folder with `basic_{train,val,test}.tsv` (default `$DATA_PATH/listops`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Tokens per sequence (longer ones are truncated and counted).
    #[serde(default = "max_len")]
    pub max_len: usize,
}

fn max_len() -> usize {
    2048
}

/// An expression tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A digit.
    Value(u8),
    /// An operator and its arguments.
    Op(Operator, Vec<Node>),
}

/// ListOps operators (LRA uses the first four).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Median, truncated to an integer (`int(np.median(..))`).
    Med,
    /// Sum modulo 10.
    SumMod,
}

impl Operator {
    fn token(self) -> &'static str {
        match self {
            Operator::Min => "[MIN",
            Operator::Max => "[MAX",
            Operator::Med => "[MED",
            Operator::SumMod => "[SM",
        }
    }

    /// Applies the operator to its argument values.
    pub fn apply(self, args: &[u8]) -> u8 {
        match self {
            Operator::Min => *args.iter().min().expect("≥ 2 args"),
            Operator::Max => *args.iter().max().expect("≥ 2 args"),
            Operator::SumMod => (args.iter().map(|v| *v as u32).sum::<u32>() % 10) as u8,
            Operator::Med => {
                let mut s = args.to_vec();
                s.sort_unstable();
                let n = s.len();
                // The mean of the two middle values, truncated (values are non-negative).
                if n % 2 == 1 { s[n / 2] } else { ((s[n / 2 - 1] as u32 + s[n / 2] as u32) / 2) as u8 }
            }
        }
    }
}

impl Node {
    /// The value of the expression.
    pub fn value(&self) -> u8 {
        match self {
            Node::Value(v) => *v,
            Node::Op(op, args) => op.apply(&args.iter().map(Node::value).collect::<Vec<_>>()),
        }
    }

    /// The LRA source string: the operator applied to its arguments one at a time, each
    /// application in parentheses, then the closing `]` (`( ( ( [MAX 2 ) 9 ) ] )`).
    pub fn source(&self) -> String {
        match self {
            Node::Value(v) => v.to_string(),
            Node::Op(op, args) => {
                let mut s = format!("( {} {} )", op.token(), args[0].source());
                for a in &args[1..] {
                    s = format!("( {s} {} )", a.source());
                }
                format!("( {s} ] )")
            }
        }
    }
}

/// Draws a tree as LRA does: below `max_depth` a node is an operator with probability 0.25
/// (2..=`max_args` arguments), otherwise a digit. Returns the tree and its token count.
pub fn generate_tree(rng: &mut impl Rng, depth: usize, max_depth: usize, max_args: usize) -> (Node, usize) {
    let mut grown = Growth { keep_below: usize::MAX, tokens: 0, draws_left: u64::MAX };
    let (node, len) = grow(rng, depth, max_depth, max_args, &mut grown).expect("no draw limit");
    (node.expect("no length limit"), len)
}

/// Limits of one tree's growth.
struct Growth {
    /// Nodes are built while the tree has fewer tokens than this; past it only counted (the
    /// same random draws, so the stream of later trees does not change).
    keep_below: usize,
    /// Tokens so far.
    tokens: usize,
    /// Nodes that may still be drawn (large `max_depth`/`max_args` grow trees exponentially).
    draws_left: u64,
}

/// [`generate_tree`] within `g`'s limits: the tree (None once it outgrew `keep_below`) and
/// its token count, or Err when it needed more draws than allowed.
fn grow(
    rng: &mut impl Rng,
    depth: usize,
    max_depth: usize,
    max_args: usize,
    g: &mut Growth,
) -> Result<(Option<Node>, usize), ()> {
    g.draws_left = g.draws_left.checked_sub(1).ok_or(())?;
    let r: f64 = if depth < max_depth { rng.random() } else { 1.0 };
    if r > 0.25 {
        let v = rng.random_range(0..10);
        g.tokens = g.tokens.saturating_add(1);
        return Ok(((g.tokens < g.keep_below).then_some(Node::Value(v)), 1));
    }
    let n = rng.random_range(2..=max_args.max(2));
    g.tokens = g.tokens.saturating_add(2);
    let (mut len, mut args) = (2usize, Some(Vec::new()));
    for _ in 0..n {
        let (t, l) = grow(rng, depth + 1, max_depth, max_args, g)?;
        len = len.saturating_add(l);
        args = args.zip(t).map(|(mut a, t)| {
            a.push(t);
            a
        });
    }
    let op = [Operator::Min, Operator::Max, Operator::Med, Operator::SumMod][rng.random_range(0..4)];
    let kept = args.filter(|_| g.tokens < g.keep_below).map(|a| Node::Op(op, a));
    Ok((kept, len))
}

/// Generator settings (LRA defaults).
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Training examples.
    pub train: usize,
    /// Validation examples.
    pub val: usize,
    /// Test examples.
    pub test: usize,
    /// Maximum tree depth.
    pub max_depth: usize,
    /// Maximum arguments per operator.
    pub max_args: usize,
    /// Keep trees with more tokens than this…
    pub min_length: usize,
    /// …and fewer than this.
    pub max_length: usize,
    /// Random seed.
    pub seed: u64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            train: 96_000,
            val: 2_000,
            test: 2_000,
            max_depth: 10,
            max_args: 10,
            min_length: 500,
            max_length: 2000,
            seed: 0,
        }
    }
}

/// Draws one tree may take before generation gives up (a tree this large is far past any
/// useful `max_length`; it means `max_depth`/`max_args` make trees grow without bound).
const MAX_DRAWS_PER_TREE: u64 = 1 << 24;
/// Trees in a row that may be rejected (out of the length range, or repeated) before
/// generation gives up: the options leave too few distinct trees.
const MAX_REJECTED_IN_A_ROW: usize = 1 << 20;

/// Generates distinct examples and writes `basic_{train,val,test}.tsv` into `out`. Options
/// that cannot produce them (trees that never fall in the length range, too few distinct
/// ones, unbounded growth) are an `InvalidInput` error instead of a loop without end.
pub fn generate(opts: &GenerateOptions, out: &Path) -> std::io::Result<()> {
    let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, msg);
    let total = [opts.val, opts.test].iter().try_fold(opts.train, |a, &b| a.checked_add(b));
    let total = total.ok_or_else(|| invalid("--train + --val + --test overflows".into()))?;
    std::fs::create_dir_all(out)?;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let (mut seen, mut rows) = (HashSet::new(), Vec::with_capacity(total.min(1 << 20)));
    let mut rejected = 0;
    while rows.len() < total {
        let mut g = Growth { keep_below: opts.max_length, tokens: 0, draws_left: MAX_DRAWS_PER_TREE };
        let Ok((tree, len)) = grow(&mut rng, 1, opts.max_depth, opts.max_args, &mut g) else {
            return Err(invalid(format!(
                "a tree grew past {MAX_DRAWS_PER_TREE} nodes: --max-depth {} with --max-args {} grows without bound",
                opts.max_depth, opts.max_args
            )));
        };
        let src = tree.filter(|_| len > opts.min_length && len < opts.max_length).map(|t| (t.source(), t.value()));
        match src {
            Some((src, value)) if seen.insert(src.clone()) => {
                rows.push((src, value));
                rejected = 0;
            }
            _ => rejected += 1,
        }
        if rejected > MAX_REJECTED_IN_A_ROW {
            return Err(invalid(format!(
                "{MAX_REJECTED_IN_A_ROW} trees in a row were outside {} < length < {} or repeated ({} of {total} found); \
                 widen the length range or raise --max-depth/--max-args",
                opts.min_length,
                opts.max_length,
                rows.len()
            )));
        }
    }
    let mut start = 0;
    for (name, n) in [("train", opts.train), ("val", opts.val), ("test", opts.test)] {
        let path = out.join(format!("basic_{name}.tsv"));
        let mut text = String::from("Source\tTarget\n");
        for (src, v) in &rows[start..start + n] {
            text.push_str(&format!("{src}\t{v}\n"));
        }
        crate::io::write_atomic(&path, |f| f.write_all(text.as_bytes())).map_err(std::io::Error::other)?;
        start += n;
    }
    Ok(())
}

/// Reads one LRA ListOps file into token ids (padded to `max_len`) with lengths and labels.
fn read_split(path: &Path, max_len: usize) -> Result<(SeqData, usize), DataError> {
    parse_tsv(&read_text(path, "LRA ListOps TSV file")?, path, max_len)
}

/// Parses the text of an LRA ListOps file (`path` names it in errors); also returns how many
/// sequences were truncated to `max_len`.
pub fn parse_tsv(text: &str, path: &Path, max_len: usize) -> Result<(SeqData, usize), DataError> {
    let rows = text.lines().skip(1).filter(|l| !l.trim().is_empty()).count() as u64;
    super::check_fits(path, &format!("{rows} sequences padded to {max_len} tokens"), rows.checked_mul(max_len as u64))?;
    let bad =
        |line: usize, msg: String| DataError::Corrupt { path: path.to_path_buf(), msg: format!("line {line}: {msg}") };
    let mut lines = text.lines();
    match lines.next().map(str::trim) {
        Some("Source\tTarget") => {}
        other => return Err(bad(1, format!("header {other:?}; expected \"Source\\tTarget\""))),
    }
    let (mut inputs, mut labels, mut lengths, mut truncated) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for (i, line) in lines.enumerate() {
        let ln = i + 2;
        if line.trim().is_empty() {
            continue;
        }
        let (src, target) = line.rsplit_once('\t').ok_or_else(|| bad(ln, "no tab between Source and Target".into()))?;
        let label: u32 = target
            .trim()
            .parse()
            .ok()
            .filter(|v| *v < 10)
            .ok_or_else(|| bad(ln, format!("target `{target}` is not a digit 0..=9")))?;
        let ids = src
            .split_whitespace()
            .filter(|t| *t != "(" && *t != ")")
            .map(|t| if t == "]" { "X" } else { t })
            .map(|t| token_id(t).ok_or_else(|| bad(ln, format!("unknown token `{t}`"))))
            .collect::<Result<Vec<_>, _>>()?;
        if ids.len() > max_len {
            truncated += 1;
        }
        let n = ids.len().min(max_len);
        let start = inputs.len();
        inputs.resize(start + max_len, 0.0);
        for (slot, id) in inputs[start..start + n].iter_mut().zip(&ids) {
            *slot = *id as f32;
        }
        labels.push(label);
        lengths.push(n.max(1));
    }
    let data = SeqData {
        inputs: inputs.into(),
        seq_len: max_len,
        channels: 1,
        targets: Targets::Classes { labels, n_classes: 10 },
        lengths: Some(lengths),
        vocab: Some(VOCAB_SIZE),
    };
    Ok((data, truncated))
}

/// Loads the three LRA splits.
pub fn load(cfg: &ListOpsConfig) -> Result<DataModule, DataError> {
    if cfg.max_len == 0 {
        return Err(DataError::Invalid("`data.max_len` must be at least 1".into()));
    }
    let dir = data_dir(&cfg.path, "listops");
    let mut splits = Vec::new();
    for name in ["train", "val", "test"] {
        let (d, truncated) = read_split(&dir.join(format!("basic_{name}.tsv")), cfg.max_len)?;
        if truncated > 0 {
            eprintln!("data: truncated {truncated} {name} sequence(s) to max_len={}", cfg.max_len);
        }
        splits.push(d);
    }
    let test = splits.pop().expect("three splits");
    let val = splits.pop().expect("three splits");
    let train = splits.pop().expect("three splits");
    Ok(DataModule { train, val, test })
}
