//! The model registry's `resnet1d`: ml4gw's GroupNorm1D against its golden file, the
//! architecture's size, and the registry's transparent parameter paths.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use wavessm::config::ConfigRequest;
use wavessm::model::conv::GroupNorm1d;
use wavessm::model::{ClassifierOptions, Model, SequenceModel};
use wavessm::train::optim::param_paths;

#[test]
fn group_norm_matches_ml4gw() {
    let g = common::load(&common::golden_dir().join("gw/groupnorm1d.json"));
    let dev = Device::flex();
    let x = g.input("x");
    let [b, c, t] = [x.shape[0], x.shape[1], x.shape[2]];
    let xt = Tensor::<3>::from_data(TensorData::new(x.data.iter().map(|&v| v as f32).collect(), [b, c, t]), &dev);
    let groups: Vec<Option<usize>> = serde_json::from_value(g.config["num_groups"].clone()).unwrap();
    let variants: Vec<String> = serde_json::from_value(g.config["variants"].clone()).unwrap();
    for (v, groups) in variants.iter().zip(groups) {
        // `None` is ml4gw's default: one group per channel.
        let mut norm = GroupNorm1d::new(c, groups.unwrap_or(c), &dev);
        let param = |k: &str| {
            let a = g.input(&format!("{k}_{v}"));
            Tensor::<2>::from_data(TensorData::new(a.data.iter().map(|&v| v as f32).collect(), [c, 1]), &dev)
        };
        norm.weight = burn::module::Param::from_tensor(param("weight"));
        norm.bias = burn::module::Param::from_tensor(param("bias"));
        let y: Vec<f64> =
            norm.forward(xt.clone()).try_into_vec_as::<f32>().unwrap().iter().map(|&v| v as f64).collect();
        let worst = g.check(&format!("out_{v}"), &y, g.output(&format!("out_{v}")));
        println!("groupnorm1d {v}: worst error / tolerance {worst:.3}");
    }
}

#[test]
fn resnet1d_has_ml4gw_size_and_shapes() {
    let dev = Device::flex();
    let cfg = wavessm::model::conv::Resnet1dConfig::default();
    let m = cfg.init(2, 1, &dev).unwrap();
    // aframe's detector: 7.22 M parameters for two interferometers.
    let n = burn::module::Module::num_params(&m);
    assert!((n as f64 - 7.22e6).abs() < 5e3, "{n}");
    let small: wavessm::model::conv::Resnet1dConfig = serde_yaml::from_str("{layers: [1, 1], norm_groups: 4}").unwrap();
    let m = small.init(2, 3, &dev).unwrap();
    let out = wavessm::model::Classifier::forward(&m, Tensor::<3>::zeros([4, 100, 2], &dev), None);
    assert_eq!(out.dims(), [4, 1, 3]);
    let e = serde_yaml::from_str::<wavessm::model::conv::Resnet1dConfig>("{kernel_size: 4}")
        .unwrap()
        .validate("model.options")
        .unwrap_err()
        .to_string();
    assert!(e.contains("model.options.kernel_size"), "{e}");
}

#[test]
fn resnet2d_reads_spectrograms_of_each_detector() {
    let dev = Device::flex();
    let small: wavessm::model::conv::Resnet2dConfig =
        serde_yaml::from_str("{layers: [1, 1], base_width: 8, norm_groups: 4, n_fft: 32, hop: 8}").unwrap();
    let m = small.init(2, 2, &dev).unwrap();
    let x = Tensor::<3>::from_data(TensorData::new(common::randn(3 * 256 * 2, 4), [3, 256, 2]), &dev);
    let out = wavessm::model::Classifier::forward(&m, x, None);
    assert_eq!(out.dims(), [3, 1, 2]);
    assert!(out.try_into_vec_as::<f32>().unwrap().iter().all(|v| v.is_finite()));
    for (yaml, key) in [
        ("{hop: 0}", "model.options.hop"),
        ("{n_fft: 1}", "model.options.n_fft"),
        ("{kernel_size: 2}", "model.options.kernel_size"),
    ] {
        let e = serde_yaml::from_str::<wavessm::model::conv::Resnet2dConfig>(yaml)
            .unwrap()
            .validate("model.options")
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{yaml}: {e}");
    }
    let cfg = ConfigRequest { tokens: vec!["experiment=gw/resnet2d".into()], ..Default::default() }.resolve().unwrap();
    assert_eq!(cfg.model.name, "resnet2d");
    // A frame longer than the data's sequences is refused before anything is built.
    let tokens = ["model=resnet2d", "model.options.n_fft=4096", "trainer.progress_bar=never"];
    let cfg = ConfigRequest { tokens: tokens.iter().map(|t| t.to_string()).collect(), ..Default::default() }
        .resolve()
        .unwrap();
    let e = wavessm::train::Setup::new(&cfg, Device::flex()).err().expect("refused").to_string();
    assert!(e.contains("model.options.n_fft"), "{e}");
}

#[test]
fn registry_selects_models_and_keeps_backbone_paths() {
    let c = ConfigRequest {
        tokens: vec!["model=resnet1d".into(), "model.options.layers=[1,1]".into()],
        ..Default::default()
    }
    .resolve()
    .unwrap();
    assert_eq!(c.name, "digits-resnet1d");
    let e = ConfigRequest { tokens: vec!["model._name_=resnet2".into()], ..Default::default() }.resolve().unwrap_err();
    assert!(e.to_string().contains("model._name_") && e.to_string().contains("resnet1d"), "{e}");
    let e =
        ConfigRequest { tokens: vec!["model=resnet1d".into(), "+model.options.blocks=2".into()], ..Default::default() }
            .resolve()
            .unwrap_err();
    assert!(e.to_string().contains("model.options"), "{e}");
    let e =
        ConfigRequest { tokens: vec!["+model.options.layers=[1]".into()], ..Default::default() }.resolve().unwrap_err();
    assert!(e.to_string().contains("model.options.layers"), "{e}");
    // The registry adds no prefix: checkpoints of the backbone keep their parameter paths.
    let c = ConfigRequest::default().resolve().unwrap();
    let seq = SequenceModel::new(&c.model, 1, 10, &Device::flex()).unwrap();
    let names = |p: Vec<(String, _)>| p.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    assert_eq!(names(param_paths(&Model::Sequence(seq.clone()))), names(param_paths(&seq)));
}
