//! The adaptive input embedding and adaptive softmax (`task=adaptivelm`): log-probabilities
//! normalize and equal the cluster factorization computed directly on the host; one cluster
//! with `div_val: 1` is a plain tied softmax; parameter names are the reference's; bad
//! options name their key; `experiment=s4-wt103` trains on real text.

mod common;

use burn::module::Param;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::{data_dir, serial};
use wavessm::model::adaptive::{AdaptiveConfig, AdaptiveEmbedding, Clusters, ProjectedAdaptiveLogSoftmax};

const H: usize = 8;
const V: usize = 20;
const R: usize = 5;

fn options(yaml: &str) -> AdaptiveConfig {
    serde_yaml::from_str(yaml).unwrap()
}

fn rand_param<const D: usize>(shape: [usize; D], seed: u64) -> Param<Tensor<D>> {
    let n = shape.iter().product();
    Param::from_tensor(common::t(common::randn(n, seed), shape, &Device::flex()))
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.try_into_vec_as::<f32>().unwrap().into_iter().map(f64::from).collect()
}

/// The two pieces of `yaml` for [`V`] tokens and width [`H`], every parameter random (the
/// reference starts some at zero, which would hide a swapped cluster row).
fn pieces(yaml: &str) -> (AdaptiveEmbedding, ProjectedAdaptiveLogSoftmax, Clusters) {
    let cfg = options(yaml);
    let clusters = cfg.clusters("task", V, H).unwrap();
    let dev = Device::flex();
    let emb = AdaptiveEmbedding::new(&cfg, clusters.clone(), &dev);
    let mut soft = ProjectedAdaptiveLogSoftmax::new(&cfg, clusters.clone(), &dev);
    let c = clusters.len() - 1;
    if c > 0 {
        soft.cluster_weight = Some(rand_param([c, clusters.widths[0]], 1));
        soft.cluster_bias = Some(rand_param([c], 2));
    }
    soft.out_layers_biases =
        soft.out_layers_biases.iter().enumerate().map(|(i, b)| rand_param(b.dims(), 10 + i as u64)).collect();
    soft.out_projs = soft
        .out_projs
        .iter()
        .enumerate()
        .map(|(i, p)| p.as_ref().map(|p| rand_param(p.dims(), 20 + i as u64)))
        .collect();
    (emb, soft, clusters)
}

/// Row-major host matrix with its column count.
struct M(Vec<f64>, usize);

impl M {
    fn of(t: Tensor<2>) -> Self {
        let cols = t.dims()[1];
        M(host(t), cols)
    }
    fn row(&self, r: usize) -> &[f64] {
        &self.0[r * self.1..(r + 1) * self.1]
    }
    /// `x @ self` for x of length rows.
    fn left(&self, x: &[f64]) -> Vec<f64> {
        (0..self.1).map(|c| x.iter().enumerate().map(|(r, v)| v * self.0[r * self.1 + c]).sum()).collect()
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn log_softmax_host(z: &[f64]) -> Vec<f64> {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    z.iter().map(|v| v - lse).collect()
}

/// Log-probabilities of every token straight from the factorization `p(w) = p_head(cluster) ·
/// p_cluster(w)`, in f64, reading the tables, biases and projections where the options put them.
fn direct(emb: &AdaptiveEmbedding, soft: &ProjectedAdaptiveLogSoftmax, cl: &Clusters, h: &[f64]) -> Vec<f64> {
    let one_table = cl.div_val == 1;
    let n = cl.len();
    let table = |i: usize| {
        let all = if soft.tie_weights {
            &emb.emb_layers[if one_table { 0 } else { i }].weight
        } else {
            &soft.out_layers_weights[if one_table { 0 } else { i }]
        };
        let t = all.val();
        if one_table { M::of(t.narrow(0, cl.ends[i], cl.size(i))) } else { M::of(t) }
    };
    let bias = |i: usize| {
        let b = host(soft.out_layers_biases[if one_table { 0 } else { i }].val());
        if one_table { b[cl.ends[i]..cl.ends[i + 1]].to_vec() } else { b }
    };
    let proj = |i: usize| match soft.out_projs.get(i) {
        Some(Some(p)) => Some(M::of(p.val())),
        _ if i > 0 && cl.tie_projs[i - 1] => emb.emb_projs.get(i).map(|p| M::of(p.val())),
        _ => None,
    };
    let logits = |i: usize, rows: &M, b: &[f64]| {
        let x = proj(i).map_or(h.to_vec(), |p| p.left(h));
        (0..b.len()).map(|j| dot(&x, rows.row(j)) + b[j]).collect::<Vec<f64>>()
    };
    let mut head = logits(0, &table(0), &bias(0));
    if let (Some(cw), Some(cb)) = (&soft.cluster_weight, &soft.cluster_bias) {
        let (cw, cb) = (M::of(cw.val()), host(cb.val()));
        let x = proj(0).map_or(h.to_vec(), |p| p.left(h));
        head.extend((0..n - 1).map(|k| dot(&x, cw.row(k)) + cb[k]));
    }
    let head = log_softmax_host(&head);
    let mut out = head[..cl.size(0)].to_vec();
    for i in 1..n {
        // Cluster i's head row is the (n - i)-th of the cluster rows: the reference's column -i.
        let lp_cluster = head[cl.size(0) + (n - 1) - i];
        out.extend(log_softmax_host(&logits(i, &table(i), &bias(i))).iter().map(|v| v + lp_cluster));
    }
    out
}

#[test]
fn log_probs_normalize_and_match_the_cluster_factorization() {
    let dev = Device::flex();
    let hidden = common::t(common::randn(R * H, 7), [R, H], &dev);
    let hrows = host(hidden.clone());
    for yaml in [
        "{div_val: 2, cutoffs: [5, 11], tie_projs: [true, false]}",
        "{div_val: 2, cutoffs: [5, 11], tie_weights: false, tie_projs: false}",
        "{div_val: 4, cutoffs: [3], init_scale: null}",
        "{div_val: 1, cutoffs: [5, 11, 16], tie_weights: false}",
        "{div_val: 1, cutoffs: [4]}",
    ] {
        let (emb, soft, cl) = pieces(yaml);
        let got = host(soft.log_probs(hidden.clone(), &emb));
        assert_eq!(got.len(), R * V, "{yaml}");
        for r in 0..R {
            let row = &got[r * V..(r + 1) * V];
            let total: f64 = row.iter().map(|v| v.exp()).sum();
            assert!((total - 1.0).abs() < 1e-5, "{yaml}: row {r} sums to {total}");
            let want = direct(&emb, &soft, &cl, &hrows[r * H..(r + 1) * H]);
            let err = row.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(err < 1e-4, "{yaml}: row {r} differs from the factorization by {err}");
        }
    }
}

#[test]
fn one_cluster_with_div_val_1_is_a_plain_tied_softmax() {
    let dev = Device::flex();
    let (emb, soft, _) = pieces("{div_val: 1, cutoffs: []}");
    assert!(soft.cluster_weight.is_none() && soft.out_layers_weights.is_empty() && emb.emb_projs.is_empty());
    let hidden = common::t(common::randn(R * H, 8), [R, H], &dev);
    let table = emb.emb_layers[0].weight.val(); // [V, H]
    let plain = log_softmax(
        hidden.clone().matmul(table.clone().transpose()) + soft.out_layers_biases[0].val().unsqueeze::<2>(),
        1,
    );
    let got = host(soft.log_probs(hidden, &emb));
    assert!(common::max_rel(&got, &host(plain)) < 1e-5);
    // The input side is the same table, scaled by sqrt(H).
    let ids: Vec<i64> = vec![0, 3, 19, 7];
    let x = emb.forward(Tensor::<2, Int>::from_data(TensorData::new(ids.clone(), [1, 4]), &dev));
    let want: Vec<f64> = ids
        .iter()
        .flat_map(|&t| M::of(table.clone()).row(t as usize).iter().map(|v| v * (H as f64).sqrt()).collect::<Vec<_>>())
        .collect();
    assert!(common::max_rel(&host(x.reshape([4, H])), &want) < 1e-6);
}

#[test]
fn adaptive_embedding_projects_each_cluster_table() {
    let dev = Device::flex();
    let (emb, _, cl) = pieces("{div_val: 2, cutoffs: [5, 11]}");
    let ids: Vec<i64> = (0..V as i64).collect();
    let x =
        host(emb.forward(Tensor::<2, Int>::from_data(TensorData::new(ids.clone(), [2, V / 2]), &dev)).reshape([V, H]));
    for &t in &ids {
        let i = (0..cl.len()).find(|&i| (t as usize) < cl.ends[i + 1]).unwrap();
        let row = M::of(emb.emb_layers[i].weight.val()).row(t as usize - cl.ends[i]).to_vec();
        let proj = M::of(emb.emb_projs[i].val()); // [H, d_i]
        let want: Vec<f64> = (0..H).map(|o| dot(proj.row(o), &row) * (H as f64).sqrt()).collect();
        let got = &x[t as usize * H..(t as usize + 1) * H];
        assert!(common::max_rel(got, &want) < 1e-5, "token {t}");
    }
}

#[test]
fn parameter_names_are_the_reference_keys() {
    use wavessm::weights::{Layout, names::torch_name};
    let cfg = options("{div_val: 4, cutoffs: [5, 11, 16], tie_projs: [true, true, true]}");
    let clusters = cfg.clusters("task", V, 64).unwrap();
    let emb = AdaptiveEmbedding::new(&cfg, clusters.clone(), &Device::flex());
    let soft = ProjectedAdaptiveLogSoftmax::new(&cfg, clusters, &Device::flex());
    let paths =
        |m: &dyn Fn() -> Vec<(String, burn::module::ParamId)>| m().into_iter().map(|(p, _)| p).collect::<Vec<_>>();
    let e = paths(&|| wavessm::train::optim::param_paths(&emb));
    let s = paths(&|| wavessm::train::optim::param_paths(&soft));
    // As state-spaces/s4's AdaptiveEmbedding and ProjectedAdaptiveLogSoftmax with tied tables
    // and tail projections: the head keeps its own projection, the tails have none.
    for i in 0..4 {
        assert!(e.contains(&format!("emb_layers.{i}.weight")) && e.contains(&format!("emb_projs.{i}")), "{e:?}");
        assert!(s.contains(&format!("out_layers_biases.{i}")), "{s:?}");
    }
    assert!(
        s.contains(&"cluster_weight".into()) && s.contains(&"cluster_bias".into()) && s.contains(&"out_projs.0".into())
    );
    assert_eq!(s.len(), 7, "no own tables or tail projections when tied: {s:?}");
    let key = torch_name(Layout::S4Sequence, "adaptive_softmax.out_projs.0").unwrap().0;
    assert_eq!(key, "loss.out_projs.0");
}

#[test]
fn bad_options_name_their_key() {
    let err = |yaml: &str, d: usize| {
        let cfg = options(yaml);
        cfg.clusters("task", V, d).unwrap_err().to_string()
    };
    let e = err("{cutoffs: [5, 20]}", H);
    assert!(e.contains("task.cutoffs") && e.contains("vocabulary size 20"), "{e}");
    let e = err("{cutoffs: [11, 5]}", H);
    assert!(e.contains("task.cutoffs") && e.contains("ascending"), "{e}");
    let e = err("{cutoffs: [5, 11], tie_projs: [true]}", H);
    assert!(e.contains("task.tie_projs"), "{e}");
    let e = err("{div_val: 4, cutoffs: [5, 11]}", 8);
    assert!(e.contains("task.div_val") && e.contains("width"), "{e}");
    let e = err("{div_val: 0, cutoffs: [5]}", 8);
    assert!(e.contains("task.div_val"), "{e}");
    let e = err("{dropsoft: 1.5, cutoffs: [5]}", 8);
    assert!(e.contains("task.dropsoft"), "{e}");
}

#[test]
fn s4_wt103_trains_on_real_text() {
    use wavessm::config::ConfigRequest;
    use wavessm::train::{FitOptions, fit};
    let _turn = serial();
    let data = data_dir().join("text/sotu");
    if !data.join("train.txt").is_file() {
        println!("SKIP: sotu corpus not found at {}", data.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tokens: Vec<String> = [
        "experiment=s4-wt103",
        "data.train_file=train.txt",
        "data.valid_file=valid.txt",
        "data.test_file=test.txt",
        "data.max_vocab=1000",
        "data.seq_len=64",
        "loader.batch_size=4",
        "task.cutoffs=[200,500]",
        "model.d_model=32",
        "model.n_layers=1",
        "model.layer.d_state=8",
        "optimizer.lr=0.003",
        "scheduler.warmup_steps=2",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=12",
        "trainer.limit_eval_batches=2",
        "trainer.progress_bar=never",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("data.path={}", data.display()), format!("logger.save_dir={}", dir.path().display())])
    .collect();
    let cfg = ConfigRequest { tokens, ..Default::default() }.resolve().unwrap();
    let s = fit(&cfg, &FitOptions { quiet: true, ..Default::default() }).unwrap();
    let (first, last) = (s.train_history[0]["train/loss"], s.train_history[1]["train/loss"]);
    println!("s4-wt103: train/loss per epoch {first} -> {last}, test {:?}", s.test);
    assert!(last < first && first < (1000f64).ln() + 1.0, "loss {first} -> {last}");
    let ppl = s.test.unwrap()["test/perplexity"];
    assert!(ppl.is_finite() && ppl < 1000.0, "perplexity {ppl} vs vocabulary 1000");
    // The validation text sample steps through the adaptive embedding and softmax.
    let sample = std::fs::read_to_string(s.run.join("figures/val_sample_epoch2.md")).unwrap();
    assert!(sample.contains("Continuation (64 tokens"), "{sample}");
}
