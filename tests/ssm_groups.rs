//! Per-kind SSM learning rates and weight decay (s4's `lr` / `wd` options): which parameters
//! each kind covers, the optimizer groups they give, the config errors, and `lr: 0` freezing.

mod common;

use std::collections::BTreeMap;

use burn::module::ParamGroup;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor};
use common::{host, serial};
use wavessm::config::ConfigRequest;
use wavessm::experiment::ExperimentConfig;
use wavessm::model::{LayerConfig, SequenceModel};
use wavessm::train::optim::{Optim, param_paths, suffix_regex};

fn resolve(extra: &[&str]) -> Result<ExperimentConfig, String> {
    let mut tokens: Vec<String> = [
        "model.d_model=8",
        "model.n_layers=1",
        "model.layer.d_state=4",
        "optimizer.lr=0.01",
        "optimizer.weight_decay=0.05",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    tokens.extend(extra.iter().map(|s| s.to_string()));
    ConfigRequest { tokens, ..Default::default() }.resolve().map_err(|e| e.to_string())
}

/// `name -> (lr, weight decay)` of every optimizer group.
fn groups(extra: &[&str]) -> BTreeMap<String, (f64, f64)> {
    let cfg = resolve(extra).unwrap();
    let optim = Optim::new(&cfg).unwrap();
    optim.groups.iter().map(|g| (g.name.clone(), (g.lr, g.weight_decay))).collect()
}

/// Parameter paths of a one-layer model that the SSM kind `key` covers.
fn members(extra: &[&str], key: &str) -> Vec<String> {
    let cfg = resolve(extra).unwrap();
    let model = SequenceModel::new(&cfg.model, 1, 3, &Device::flex().autodiff()).unwrap();
    let layer = LayerConfig::from_named(&cfg.model.layer, "model.layer").unwrap();
    let g = layer.ssm_groups().into_iter().find(|g| g.key == key).unwrap_or_else(|| panic!("no kind {key}"));
    let m = ParamGroup::from_regex(suffix_regex(g.names)).unwrap();
    let mut out: Vec<String> = param_paths(&model)
        .into_iter()
        .filter(|(p, id)| m.matches(id, Some(p)))
        .map(|(p, _)| p.rsplit('.').next().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn s4_kinds_cover_the_reference_tensors() {
    let s4 = ["model=s4", "model.layer.l_max=16"];
    assert_eq!(members(&s4, "dt"), ["inv_dt"]);
    assert_eq!(members(&s4, "A"), ["A_imag", "A_real", "P"]);
    assert_eq!(members(&s4, "B"), ["B"]);
    assert_eq!(members(&s4, "C"), ["C"]);
    assert_eq!(members(&["model=s4d"], "A"), ["A_imag", "log_A_real"]);
    assert_eq!(members(&["model=dss"], "Lambda"), ["Lambda"]);
    assert_eq!(members(&["model=dss", "model.layer.version=exp"], "Lambda"), ["Lambda_im", "Lambda_log_neg_re"]);
    assert_eq!(members(&["model=dss"], "W"), ["W"]);
}

#[test]
fn lr_and_wd_maps_give_one_group_per_kind() {
    // The default map: dt, A, B at 1e-3 with weight decay 0; C stays in the default group.
    let g = groups(&["model=s4"]);
    let keys: Vec<&str> = g.keys().map(String::as_str).collect();
    assert_eq!(keys, ["default", "ssm.A", "ssm.B", "ssm.dt"]);
    assert_eq!(g["ssm.A"], (0.001, 0.0));
    assert_eq!(g["default"], (0.01, 0.05));
    // s4-aan's `{dt: null, A, B}`: dt keeps the SSM weight decay but the global lr; B: 0 freezes.
    let g = groups(&["model=s4", "model.layer.lr={dt: null, A: 0.002, B: 0}"]);
    assert_eq!(g["ssm.dt"], (0.01, 0.0));
    assert_eq!(g["ssm.A"], (0.002, 0.0));
    assert!(!g.contains_key("ssm.B"), "frozen B needs no group: {g:?}");
    // One number is s4.py's every registered tensor, C included (with the global weight decay).
    let g = groups(&["model=s4", "model.layer.lr=0.003"]);
    assert_eq!((g["ssm.dt"], g["ssm.B"], g["ssm.C"]), ((0.003, 0.0), (0.003, 0.0), (0.003, 0.05)));
    // ... but not in Liquid-S4, whose kernel registers C plainly.
    assert!(!groups(&["model=liquid_s4", "model.layer.lr=0.003"]).contains_key("ssm.C"));
    // A wd map: left-out kinds take the optimizer's.
    let g = groups(&["model=s4", "model.layer.wd={A: 0.1}"]);
    assert_eq!((g["ssm.A"], g["ssm.dt"]), ((0.001, 0.1), (0.001, 0.05)));
    // null everywhere: no SSM groups at all.
    let g = groups(&["model=s4", "model.layer.lr=null", "model.layer.wd=null"]);
    assert_eq!(g.len(), 1, "{g:?}");
    // S4D: a number for dt and A (s4d.py); DSS: a map keeps dss.py's 1e-3 for left-out keys.
    let g = groups(&["model=s4d", "model.layer.lr={A: 0.005}"]);
    assert_eq!((g["ssm.A"], g["ssm.dt"]), ((0.005, 0.0), (0.01, 0.0)));
    let g = groups(&["model=dss", "model.layer.lr={W: 0.02}"]);
    assert_eq!((g["ssm.W"], g["ssm.log_dt"], g["ssm.Lambda"]), ((0.02, 0.0), (0.001, 0.0), (0.001, 0.0)));
}

#[test]
fn unknown_kinds_and_bad_values_are_named() {
    let e = resolve(&["model=s4", "model.layer.lr={dt: 0.001, D: 0.1}"]).unwrap_err();
    assert!(e.contains("model.layer.lr.D") && e.contains("dt, A, B, C"), "{e}");
    let e = resolve(&["model=s4", "model.layer.wd={C: 0.1}"]).unwrap_err();
    assert!(e.contains("model.layer.wd.C") && e.contains("dt, A, B"), "{e}");
    let e = resolve(&["model=dss", "model.layer.lr={dt: 0.1}"]).unwrap_err();
    assert!(e.contains("model.layer.lr.dt") && e.contains("log_dt, Lambda, W"), "{e}");
    let e = resolve(&["model=s4d", "model.layer.lr={B: 0.1}"]).unwrap_err();
    assert!(e.contains("model.layer.lr.B") && e.contains("dt, A"), "{e}");
    let e = resolve(&["model=s4", "model.layer.lr=-0.1"]).unwrap_err();
    assert!(e.contains("model.layer.lr") && e.contains("≥ 0"), "{e}");
    let e = resolve(&["model=s4", "model.layer.lr=fast"]).unwrap_err();
    assert!(e.contains("model.layer.lr"), "{e}");
}

#[test]
fn zero_lr_freezes_the_parameter_through_a_training_step() {
    let _turn = serial();
    let cfg = resolve(&["model=s4", "model.layer.l_max=16", "model.layer.lr={dt: 0, A: 0.001, B: 0.001}"]).unwrap();
    let device = Device::flex().autodiff();
    device.seed(5);
    let model = SequenceModel::new(&cfg.model, 1, 3, &device).unwrap();
    let find = |m: &SequenceModel, suffix: &str| -> Vec<f64> {
        let id = param_paths(m).into_iter().find(|(p, _)| p.ends_with(suffix)).expect(suffix).1;
        let mut out = None;
        struct Grab<'a>(burn::module::ParamId, &'a mut Option<Vec<f64>>);
        impl burn::module::ModuleVisitor for Grab<'_> {
            fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
                if p.id == self.0 {
                    *self.1 = Some(host(p.val()));
                }
            }
        }
        burn::module::Module::visit(m, &mut Grab(id, &mut out));
        out.unwrap()
    };
    let before: Vec<Vec<f64>> =
        ["kernel.inv_dt", "kernel.A_real", "kernel.C"].iter().map(|s| find(&model, s)).collect();
    let x = Tensor::<3>::random([2, 16, 1], Distribution::Normal(0.0, 1.0), &device);
    let loss = model.forward(x, None).square().mean();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let dt_id = param_paths(&model).into_iter().find(|(p, _)| p.ends_with("kernel.inv_dt")).unwrap().1;
    assert!(grads.get::<2>(dt_id).is_none(), "a frozen parameter gets no gradient");
    let mut optim = Optim::new(&cfg).unwrap();
    let model = optim.step(0, 10, model, grads);
    let after: Vec<Vec<f64>> = ["kernel.inv_dt", "kernel.A_real", "kernel.C"].iter().map(|s| find(&model, s)).collect();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&after[0]), bits(&before[0]), "inv_dt (lr 0) moved");
    assert_ne!(after[1], before[1], "A_real (lr 1e-3) did not move");
    assert_ne!(after[2], before[2], "C (optimizer lr) did not move");
}
