//! Chain models: each build-time check (links, methods, keyword arguments, shapes, the
//! `forward` output), parameter paths under the link names, `freeze`, commands other than
//! `forward`, and D4L's `optimizers` (orphans, double claims, the groups they become).

mod common;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use wavessm::config::ConfigRequest;
use wavessm::model::chain::{Chain, ChainConfig};
use wavessm::model::{Classifier, ClassifierOptions};
use wavessm::train::optim::{Optim, param_paths};

/// A linear encoder (D → 8) and a pooled S4D backbone (8 → K) run by `forward`.
const BASE: &str = "
links:
  enc: {_name_: linear, d_output: 8}
  body: {_name_: sequence, layer: {_name_: s4d, d_state: 4}, d_model: 8, n_layers: 1, pool: mean}
commands:
  forward: [{link: enc}, {link: body}]
";

/// A small VAE chain: an S4D encoder, a Gaussian latent, the code repeated over time and a
/// linear decoder, with `forward` and `encode`.
const VAE: &str = "
links:
  enc: {_name_: sequence, layer: {_name_: s4d, d_state: 4}, d_model: 8, n_layers: 1, pool: mean, d_output: 4}
  latent: gaussian
  expand: repeat
  dec: {_name_: linear, d_output: 5}
commands:
  forward: [{link: enc}, {link: latent}, {link: expand}, {link: dec}]
  encode: [{link: enc}, {link: latent, method: mean}]
";

fn cfg(yaml: &str) -> ChainConfig {
    serde_yaml::from_str(yaml).unwrap()
}

/// Builds `yaml` for 3 input features and 5 outputs; the error's path and message on failure.
fn build(yaml: &str) -> Result<Chain, String> {
    cfg(yaml).init(3, 5, &Device::flex()).map_err(|e| e.to_string())
}

/// `BASE` with the `forward` command replaced and extra top-level YAML.
fn with(forward: &str, extra: &str) -> String {
    format!("{}{extra}", BASE.replace("[{link: enc}, {link: body}]", forward))
}

fn err(yaml: &str) -> String {
    build(yaml).expect_err("the config should be refused")
}

#[test]
fn forward_runs_the_steps_and_paths_use_link_names() {
    let chain = build(BASE).unwrap();
    let dev = Device::flex();
    let out = chain.forward(Tensor::<3>::ones([2, 12, 3], &dev), None);
    assert_eq!(out.dims(), [2, 1, 5]);
    let paths: Vec<String> = param_paths(&chain).into_iter().map(|(p, _)| p).collect();
    assert!(paths.contains(&"enc.weight".to_string()), "{paths:?}");
    assert!(paths.iter().any(|p| p.starts_with("body.layers.0.")), "{paths:?}");
    assert!(paths.iter().all(|p| p.starts_with("enc.") || p.starts_with("body.")), "{paths:?}");
    // The link widths were taken from the flow: enc reads D = 3, body reads enc's 8.
    let n = |m: &Chain, link: &str| {
        let links = &m.links;
        Module::num_params(&links[link])
    };
    assert_eq!(n(&chain, "enc"), 3 * 8 + 8);
}

#[test]
fn unknown_links_methods_and_kwargs_name_the_command_and_step() {
    let e = err(&with("[{link: enc}, {link: nope}]", ""));
    assert!(e.contains("model.options.commands.forward.1"), "{e}");
    assert!(e.contains("command `forward`, step 1") && e.contains("no link `nope`") && e.contains("body, enc"), "{e}");
    let e = err(&with("[{link: enc, method: decode}, {link: body}]", ""));
    assert!(e.contains("step 0 (`enc.decode`)") && e.contains("no method `decode`"), "{e}");
    let e = err(&with("[{link: enc, kwargs: {temperature: 1.0}}, {link: body}]", ""));
    assert!(e.contains("no keyword argument `temperature`"), "{e}");
    let e = err(&with("[{link: enc}, {link: body, input: z}]", ""));
    assert!(e.contains("no value `z` yet"), "{e}");
    let e = err("links: {enc: {_name_: lstm_cell}}\ncommands: {forward: [{link: enc}]}");
    assert!(e.contains("model.options.links.enc._name_") && e.contains("unknown chain link `lstm_cell`"), "{e}");
    let e = err("links: {enc: {_name_: linear, width: 3}}\ncommands: {forward: [{link: enc}]}");
    assert!(e.contains("model.options.links.enc") && e.contains("width"), "{e}");
}

#[test]
fn shape_errors_name_the_command_the_step_and_both_shapes() {
    // A declared input width that the data does not have.
    let e = err(&BASE.replace("{_name_: linear, d_output: 8}", "{_name_: linear, d_input: 4, d_output: 8}"));
    assert!(e.contains("command `forward`, step 0 (`enc.forward`)"), "{e}");
    assert!(e.contains("[B, L, 3]") && e.contains("[B, L, 4]"), "{e}");
    // The same link fed another width by a second command.
    let e = err(&format!("{BASE}  encode: [{{link: body}}]\n"));
    assert!(e.contains("model.options.commands.encode.0") && e.contains("command `encode`, step 0"), "{e}");
    assert!(e.contains("[B, L, 3]") && e.contains("[B, L, 8]"), "{e}");
    // `repeat` needs one row per sequence; `gaussian` an even width.
    let e = err(&with("[{link: enc}, {link: rep}, {link: body}]", "").replace("links:\n", "links:\n  rep: repeat\n"));
    assert!(e.contains("step 1 (`rep.forward`)") && e.contains("[B, L, 8]") && e.contains("[B, 1, D]"), "{e}");
    let e = err(&with("[{link: g}, {link: body}]", "").replace("links:\n", "links:\n  g: gaussian\n"));
    assert!(e.contains("step 0 (`g.forward`)") && e.contains("[B, L, 3]") && e.contains("even width"), "{e}");
    // `forward` must end in the task's outputs.
    let e = err(&BASE.replace("pool: mean}", "pool: mean, d_output: 6}"));
    assert!(e.contains("model.options.commands.forward") && e.contains("[B, 1, 6]") && e.contains("[B, 1, 5]"), "{e}");
    let e = err(&BASE.replace("forward:", "encode:"));
    assert!(e.contains("model.options.commands") && e.contains("`forward`"), "{e}");
    let e = err(&format!("{BASE}  spare: []\n"));
    assert!(e.contains("command `spare` has no steps"), "{e}");
}

#[test]
fn other_commands_run_by_name() {
    let yaml = VAE;
    let chain = build(yaml).unwrap();
    assert!(cfg(yaml).per_step() && !cfg(BASE).per_step());
    let x = Tensor::<3>::ones([2, 7, 3], &Device::flex());
    let (values, last) = chain.run("encode", x.clone(), None).unwrap();
    assert_eq!(last, "latent");
    assert_eq!(values["latent"].dims(), [2, 1, 2]);
    // `mean` is the first half of the encoder's output.
    let mu: Vec<f32> = values["latent.mu"].clone().try_into_vec_as().unwrap();
    let enc: Vec<f32> = values["enc"].clone().narrow(2, 0, 2).try_into_vec_as().unwrap();
    assert_eq!(mu, enc);
    assert_eq!(chain.forward(x.clone(), None).dims(), [2, 7, 5]);
    assert!(chain.run("reconstruct", x, None).is_none());
}

/// The validation figures read `reconstruct` against the input, the codes of `encode` (the
/// latent mean, the same on every call, unlike `forward`'s sample) with the labels, and
/// `generate` (the decoder on prior draws: the input gives only the shape).
#[test]
fn validation_figures_run_reconstruct_encode_and_generate() {
    use burn::tensor::{Int, TensorData};
    use wavessm::data::{Batch, BatchTargets};
    use wavessm::train::chain_figures::{ChainFigure, collect};
    let extra = "  reconstruct: [{link: enc}, {link: latent, method: mean}, {link: expand}, {link: dec}]
  generate: [{link: enc}, {link: latent, method: prior, kwargs: {temperature: 0.5}}, {link: expand}, {link: dec}]
";
    let yaml = &format!("{VAE}{extra}");
    let chain = build(yaml).unwrap();
    let dev = Device::flex();
    let x = Tensor::<3>::random([5, 7, 3], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
    let y = BatchTargets::Classes(Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 3, 4], [5]), &dev));
    let batch = Batch { x: x.clone(), y, lengths: None };
    let figs = collect(&chain, &batch);
    let [ChainFigure::Reconstruction(seqs), ChainFigure::Samples(samples), ChainFigure::Codes(codes)] = figs.as_slice()
    else {
        panic!("{figs:?}")
    };
    let x0: Vec<f32> = x.narrow(2, 0, 1).try_into_vec_as().unwrap();
    assert_eq!(seqs.len(), 4, "at most four sequences");
    for (i, (input, rec)) in seqs.iter().enumerate() {
        assert_eq!((input.as_slice(), rec.len()), (&x0[i * 7..(i + 1) * 7], 7));
    }
    let (values, _) = chain.run("encode", batch.x.clone(), None).unwrap();
    let mu: Vec<f32> = values["latent"].clone().try_into_vec_as().unwrap();
    let want: Vec<(f32, f32, i64)> = (0..5).map(|i| (mu[2 * i], mu[2 * i + 1], i as i64)).collect();
    assert_eq!(codes, &want);
    let again = collect(&chain, &batch);
    assert_eq!((&again[0], &again[2]), (&figs[0], &figs[2]), "no sampling in reconstruct and encode");
    assert_ne!(again[1], figs[1], "generate draws anew");
    assert!(samples.len() == 4 && samples.iter().all(|s| s.len() == 7), "{samples:?}");
    let zeros = Batch { x: Tensor::<3>::zeros([5, 7, 3], &dev), ..batch.clone() };
    let drawn = |b: &Batch| {
        dev.seed(5);
        collect(&chain, b).swap_remove(1)
    };
    assert_eq!(drawn(&batch), drawn(&zeros), "the input gives generate only its shape");
    assert!(collect(&build(BASE).unwrap(), &batch).is_empty(), "a chain without the commands draws none");
}

/// Trainable parameter paths.
fn trainable(m: &impl Module) -> Vec<String> {
    common::named_params(m).into_iter().filter(|(_, t, _)| *t).map(|(path, _, _)| path).collect()
}

#[test]
fn frozen_links_get_no_gradient_and_need_no_optimizer() {
    let yaml = BASE.replace("d_output: 8}", "d_output: 8, freeze: true}");
    let chain = cfg(&yaml).init(3, 5, &Device::flex().autodiff()).unwrap();
    let t = trainable(&chain);
    assert!(!t.is_empty() && t.iter().all(|p| p.starts_with("body.")), "{t:?}");
    let opt = "optimizers: [{links: [body], optimizer_name: sgd, kwargs: {lr: 0.1}}]\n";
    build(&format!("{yaml}{opt}")).unwrap();
    let e = err(&format!("{yaml}optimizers: [{{links: [enc, body]}}]\n"));
    assert!(e.contains("model.options.optimizers.0.links") && e.contains("`enc` is frozen"), "{e}");
}

#[test]
fn optimizer_entries_claim_every_parameter_once() {
    let e = err(&format!("{BASE}optimizers: [{{links: [enc]}}]\n"));
    assert!(e.contains("model.options.optimizers") && e.contains("in no entry") && e.contains("body.layers.0"), "{e}");
    assert!(e.contains("link `body`"), "{e}");
    let e = err(&format!("{BASE}optimizers: [{{links: [enc, body]}}, {{links: [body]}}]\n"));
    assert!(e.contains("model.options.optimizers.1.links") && e.contains("`body` is claimed twice"), "{e}");
    assert!(e.contains("optimizers.0") && e.contains("optimizers.1"), "{e}");
    let e = err(&format!("{BASE}optimizers: [{{links: [enc, head]}}]\n"));
    assert!(e.contains("no link `head`"), "{e}");
    let e = err(&format!("{BASE}optimizers: [{{links: [enc, body], kwargs: {{lr: -1.0}}}}]\n"));
    assert!(e.contains("model.options.optimizers.0.kwargs.lr"), "{e}");
    let e = err(&format!("{BASE}optimizers: [{{links: [enc, body], kwargs: {{lrr: 0.1}}}}]\n"));
    assert!(e.contains("model.options.optimizers.0.kwargs") && e.contains("lrr"), "{e}");
    let e =
        err(&format!("{BASE}optimizers: [{{links: [enc, body], lr_scheduler: {{schedulers: [{{name: step}}]}}}}]\n"));
    assert!(e.contains("model.options.optimizers.0.lr_scheduler"), "{e}");
}

#[test]
fn optimizer_entries_become_groups_with_their_own_optimizer_and_schedule() {
    let tokens = [
        "model._name_=chain",
        "+model.links={enc: {_name_: linear, d_output: 8}, body: {_name_: sequence, layer: s4d, d_model: 8, n_layers: 1}}",
        "+model.commands={forward: [{link: enc}, {link: body}]}",
        "+model.optimizers=[{links: [enc], optimizer_name: sgd, kwargs: {lr: 0.5, momentum: 0.9}}, \
         {links: [body], optimizer_name: adam, kwargs: {lr: 0.002}, lr_scheduler: {schedulers: \
         [{name: constant}, {name: step, kwargs: {step_size: 2, gamma: 0.5}}], milestones: [3]}}]",
        "optimizer.groups=[{params: '^body\\.decoder\\.', lr: 0.25}]",
    ];
    let c = ConfigRequest { tokens: tokens.iter().map(|s| s.to_string()).collect(), ..Default::default() }
        .resolve()
        .unwrap();
    assert!(c.to_yaml().contains("optimizers:"), "{}", c.to_yaml());
    let optim = Optim::new(&c).unwrap();
    let names: Vec<&str> = optim.groups.iter().map(|g| g.name.as_str()).collect();
    assert!(names.ends_with(&["groups.0", "optimizers.0:enc", "optimizers.1:body"]), "{names:?}");
    let n = optim.groups.len();
    assert_eq!((optim.groups[n - 2].lr, optim.groups[n - 1].lr), (0.5, 0.002));
    // body's schedule: constant for 3 steps, then ×0.5 every 2 steps of its own.
    let lrs: Vec<f64> = (0..7).map(|s| optim.lrs(s, 100)[n - 1]).collect();
    assert_eq!(lrs, [0.002, 0.002, 0.002, 0.002, 0.002, 0.001, 0.001]);
    assert_eq!(optim.lrs(6, 100)[n - 2], 0.5);
}

#[test]
fn the_vae_experiment_resolves_and_its_printed_config_reads_back() {
    let c = ConfigRequest { tokens: vec!["experiment=smnist/s4-vae".into()], ..Default::default() }.resolve().unwrap();
    assert_eq!(c.model.name, "chain");
    let yaml = c.to_yaml();
    // The chain's keys sit under `model.options`, every default filled in.
    let tree: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
    let o = &tree["model"]["options"];
    assert_eq!(o["links"]["decoder"]["pool"], serde_yaml::Value::from("none"));
    assert_eq!(o["optimizers"][1]["optimizer_name"], serde_yaml::Value::from("adam"));
    assert_eq!(o["loss"][1]["schedule"]["_name_"], serde_yaml::Value::from("constant"));
    let again = wavessm::experiment::ExperimentConfig::from_value(tree.clone()).unwrap();
    // Links keep the keys they were given (mappings compare regardless of key order).
    assert_eq!(serde_yaml::from_str::<serde_yaml::Value>(&again.to_yaml()).unwrap(), tree);
    // A link's own check names its path under the chain.
    let e = ConfigRequest {
        tokens: vec!["experiment=smnist/s4-vae".into(), "model.links.encoder.dropout=2.0".into()],
        ..Default::default()
    }
    .resolve()
    .unwrap_err()
    .to_string();
    assert!(e.contains("model.options.links.encoder.dropout"), "{e}");
}

#[test]
fn registered_layers_and_defaults_make_links() {
    // The example: a linear encoder, a backbone of default width, an MLP head; plus a
    // bare registered layer (any `model.layer` entry) between them.
    let yaml = "
links:
  encoder: {_name_: linear, d_output: 8}
  mix: {_name_: lstm}
  backbone: {_name_: sequence, layer: s4d, n_layers: 1, pool: mean, d_output: 6}
  head: {_name_: mlp}
commands:
  forward: [{link: encoder}, {link: mix}, {link: backbone}, {link: head}]
";
    let chain = build(yaml).unwrap();
    let out = chain.forward(Tensor::<3>::ones([2, 9, 3], &Device::flex()), None);
    assert_eq!(out.dims(), [2, 1, 5]);
    let paths: Vec<String> = param_paths(&chain).into_iter().map(|(p, _)| p).collect();
    assert!(paths.iter().any(|p| p.starts_with("mix.")), "{paths:?}");
    // The backbone's default width is 64; the head's hidden width is its input's.
    assert!(paths.contains(&"backbone.encoder.weight".to_string()), "{paths:?}");
    assert_eq!(Module::num_params(&chain.links["head"]), 6 * 6 + 6 + 6 * 5 + 5);
    let e = err(&yaml.replace("{_name_: lstm}", "{_name_: lstm, d_output: 4}"));
    assert!(e.contains("model.options.links.mix.d_output"), "{e}");
    let e = err(&yaml.replace("{_name_: lstm}", "{_name_: lstm, d_state: 4}"));
    assert!(e.contains("model.options.links.mix") && e.contains("d_state"), "{e}");
}
