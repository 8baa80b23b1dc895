//! The optimizer kinds (`optimizer._name_`, and each `optimizer.groups[i]._name_`): torch's
//! names and defaults mapped onto burn's optimizers. Weight decay is decoupled for `adamw` and
//! `lion` and an L2 term on the gradient for the others, as in torch.

use burn::module::ParamGroup;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{
    AdaGrad, AdaGradConfig, Adam, AdamConfig, AdamW, AdamWConfig, Lion, LionConfig, ModuleOptimizer, RmsProp,
    RmsPropConfig, Sgd, SgdConfig,
};

use super::config::{OptimizerConfig, OptimizerName, ParamGroupConfig};
use crate::config::ConfigError;

/// The resolved hyperparameters of one optimizer (the global one, or a group's after falling
/// back to the global values).
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerSpec {
    /// Which optimizer.
    pub kind: OptimizerName,
    /// Weight decay (decoupled for adamw and lion, L2 otherwise).
    pub weight_decay: f64,
    /// Adam/Lion betas.
    pub betas: [f64; 2],
    /// Numerical-stability epsilon.
    pub eps: f64,
    /// SGD / RMSprop momentum.
    pub momentum: f64,
    /// SGD dampening.
    pub dampening: f64,
    /// SGD Nesterov momentum.
    pub nesterov: bool,
    /// RMSprop smoothing constant.
    pub alpha: f64,
    /// Centered RMSprop.
    pub centered: bool,
    /// Adagrad learning-rate decay.
    pub lr_decay: f64,
}

/// One built optimizer of any kind.
enum Built {
    Adam(Adam),
    AdamW(AdamW),
    Sgd(Sgd),
    RmsProp(RmsProp),
    AdaGrad(AdaGrad),
    Lion(Lion),
}

/// Checks the global optimizer and every group's (rates, decays, momenta), naming the key.
pub fn validate(o: &OptimizerConfig) -> Result<(), ConfigError> {
    let lr = |path: String, v: f64| {
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err(ConfigError::Key { path, msg: format!("must be a finite number ≥ 0, got {v}") })
        }
    };
    lr("optimizer.lr".into(), o.lr)?;
    OptimizerSpec::global(o).validate("optimizer")?;
    for (i, g) in o.groups.iter().enumerate() {
        if let Some(v) = g.lr {
            lr(format!("optimizer.groups.{i}.lr"), v)?;
        }
        OptimizerSpec::for_group(o, g).validate(&format!("optimizer.groups.{i}"))?;
    }
    Ok(())
}

impl OptimizerSpec {
    /// The global optimizer.
    pub fn global(o: &OptimizerConfig) -> Self {
        Self {
            kind: o.name,
            weight_decay: o.weight_decay,
            betas: o.betas,
            eps: o.eps,
            momentum: o.momentum,
            dampening: o.dampening,
            nesterov: o.nesterov,
            alpha: o.alpha,
            centered: o.centered,
            lr_decay: o.lr_decay,
        }
    }

    /// A group's optimizer: its own keys, else the global ones.
    pub fn for_group(o: &OptimizerConfig, g: &ParamGroupConfig) -> Self {
        let base = Self::global(o);
        Self {
            kind: g.name.unwrap_or(base.kind),
            weight_decay: g.weight_decay.unwrap_or(base.weight_decay),
            betas: g.betas.unwrap_or(base.betas),
            eps: g.eps.unwrap_or(base.eps),
            momentum: g.momentum.unwrap_or(base.momentum),
            dampening: g.dampening.unwrap_or(base.dampening),
            nesterov: g.nesterov.unwrap_or(base.nesterov),
            alpha: g.alpha.unwrap_or(base.alpha),
            centered: g.centered.unwrap_or(base.centered),
            lr_decay: g.lr_decay.unwrap_or(base.lr_decay),
        }
    }

    /// The same optimizer with another weight decay (the SSM groups' own).
    pub fn with_weight_decay(&self, weight_decay: f64) -> Self {
        Self { weight_decay, ..self.clone() }
    }

    /// Checks the ranges under `path` (`optimizer` or `optimizer.groups.<i>`).
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, msg: String| Err(ConfigError::Key { path: format!("{path}.{key}"), msg });
        let finite_ge0 = |key: &str, v: f64| {
            if v.is_finite() && v >= 0.0 { Ok(()) } else { bad(key, format!("must be a finite number ≥ 0, got {v}")) }
        };
        let fraction = |key: &str, v: f64| {
            if (0.0..1.0).contains(&v) { Ok(()) } else { bad(key, format!("must be in [0, 1), got {v}")) }
        };
        finite_ge0("weight_decay", self.weight_decay)?;
        fraction("momentum", self.momentum)?;
        if !(0.0..=1.0).contains(&self.dampening) {
            return bad("dampening", format!("must be in [0, 1], got {}", self.dampening));
        }
        fraction("alpha", self.alpha)?;
        finite_ge0("lr_decay", self.lr_decay)?;
        for (i, b) in self.betas.iter().enumerate() {
            fraction(&format!("betas.{i}"), *b)?;
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad("eps", format!("must be a finite number > 0, got {}", self.eps));
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return bad("nesterov", "Nesterov momentum needs momentum > 0 and dampening 0 (as torch's SGD)".into());
        }
        Ok(())
    }

    fn build(&self) -> Built {
        let (b1, b2, eps) = (self.betas[0] as f32, self.betas[1] as f32, self.eps as f32);
        let l2 = (self.weight_decay > 0.0).then(|| WeightDecayConfig::new(self.weight_decay as f32));
        match self.kind {
            OptimizerName::Adam => Built::Adam(
                AdamConfig::new().with_beta_1(b1).with_beta_2(b2).with_epsilon(eps).with_weight_decay(l2).build(),
            ),
            OptimizerName::Adamw => Built::AdamW(
                AdamWConfig::new()
                    .with_beta_1(b1)
                    .with_beta_2(b2)
                    .with_epsilon(eps)
                    .with_weight_decay(self.weight_decay as f32)
                    .build(),
            ),
            OptimizerName::Sgd => {
                let momentum = (self.momentum > 0.0).then_some(MomentumConfig {
                    momentum: self.momentum,
                    dampening: self.dampening,
                    nesterov: self.nesterov,
                });
                Built::Sgd(SgdConfig::new().with_momentum(momentum).with_weight_decay(l2).build())
            }
            OptimizerName::Rmsprop => Built::RmsProp(
                RmsPropConfig::new()
                    .with_alpha(self.alpha as f32)
                    .with_momentum(self.momentum as f32)
                    .with_epsilon(eps)
                    .with_centered(self.centered)
                    .with_weight_decay(l2)
                    .build(),
            ),
            OptimizerName::Adagrad => Built::AdaGrad(
                AdaGradConfig::new().with_lr_decay(self.lr_decay).with_epsilon(eps).with_weight_decay(l2).build(),
            ),
            OptimizerName::Lion => Built::Lion(
                LionConfig::new().with_beta_1(b1).with_beta_2(b2).with_weight_decay(self.weight_decay as f32).build(),
            ),
        }
    }

    /// The whole-model optimizer (every parameter no group claims).
    pub fn module(&self) -> ModuleOptimizer {
        match self.build() {
            Built::Adam(o) => o.into(),
            Built::AdamW(o) => o.into(),
            Built::Sgd(o) => o.into(),
            Built::RmsProp(o) => o.into(),
            Built::AdaGrad(o) => o.into(),
            Built::Lion(o) => o.into(),
        }
    }

    /// Adds this optimizer for the parameters `group` matches (burn keeps each parameter's
    /// state with the optimizer of its group, and checkpoints route it back by path).
    pub fn add_group(&self, inner: ModuleOptimizer, group: ParamGroup) -> ModuleOptimizer {
        match self.build() {
            Built::Adam(o) => inner.with_group(group, o, None),
            Built::AdamW(o) => inner.with_group(group, o, None),
            Built::Sgd(o) => inner.with_group(group, o, None),
            Built::RmsProp(o) => inner.with_group(group, o, None),
            Built::AdaGrad(o) => inner.with_group(group, o, None),
            Built::Lion(o) => inner.with_group(group, o, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::module::{Module, Param};
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Tensor};

    use super::*;

    #[derive(Module, Debug)]
    struct W {
        w: Param<Tensor<1>>,
    }

    fn spec(yaml: &str) -> OptimizerSpec {
        let o: OptimizerConfig = serde_yaml::from_str(&format!("{{lr: 0.1, {yaml}}}")).unwrap();
        OptimizerSpec::global(&o)
    }

    /// Steps `loss = Σ (w - 3)² / 2` (gradient w - 3) from w = [1, -1]; returns w after each step.
    fn run(spec: &OptimizerSpec, lr: f64, steps: usize) -> Vec<[f32; 2]> {
        let dev = Device::flex().autodiff();
        let mut m = W { w: Param::from_tensor(Tensor::<1>::from_floats([1.0, -1.0], &dev)) };
        let mut o = spec.module();
        let mut out = Vec::new();
        for _ in 0..steps {
            let loss = (m.w.val() - 3.0).powi_scalar(2).sum() / 2.0;
            let g = GradientsParams::from_grads(loss.backward(), &m);
            m = o.step(lr, m, g);
            let v: Vec<f32> = m.w.val().try_into_vec_as::<f32>().unwrap();
            out.push([v[0], v[1]]);
        }
        out
    }

    fn close(a: [f32; 2], b: [f64; 2]) -> bool {
        (a[0] as f64 - b[0]).abs() < 1e-5 && (a[1] as f64 - b[1]).abs() < 1e-5
    }

    #[test]
    fn first_steps_match_the_update_rules() {
        let (w, g) = ([1.0, -1.0], [-2.0, -4.0]);
        // SGD with L2: w - lr (g + wd w).
        let s = run(&spec("_name_: sgd, weight_decay: 0.5"), 0.1, 1);
        assert!(close(s[0], [w[0] - 0.1 * (g[0] + 0.5 * w[0]), w[1] - 0.1 * (g[1] + 0.5 * w[1])]), "{s:?}");
        // SGD momentum 0.9, dampening 0.1: v1 = g1, v2 = 0.9 v1 + 0.9 g2; Nesterov adds 0.9 v.
        let s = run(&spec("_name_: sgd, momentum: 0.9, dampening: 0.1"), 0.1, 2);
        let w1 = [w[0] - 0.1 * g[0], w[1] - 0.1 * g[1]];
        let g2 = [w1[0] - 3.0, w1[1] - 3.0];
        let v2 = [0.9 * g[0] + 0.9 * g2[0], 0.9 * g[1] + 0.9 * g2[1]];
        assert!(close(s[1], [w1[0] - 0.1 * v2[0], w1[1] - 0.1 * v2[1]]), "{s:?}");
        let s = run(&spec("_name_: sgd, momentum: 0.9, nesterov: true"), 0.1, 1);
        assert!(close(s[0], [w[0] - 0.1 * 1.9 * g[0], w[1] - 0.1 * 1.9 * g[1]]), "{s:?}");
        // Adam's and Lion's first step is lr·sign(g) (Lion also decays w by lr·wd).
        let s = run(&spec("_name_: adam"), 0.1, 1);
        assert!(close(s[0], [w[0] + 0.1, w[1] + 0.1]), "{s:?}");
        let s = run(&spec("_name_: lion, weight_decay: 0.5"), 0.1, 1);
        assert!(close(s[0], [w[0] * 0.95 + 0.1, w[1] * 0.95 + 0.1]), "{s:?}");
    }

    #[test]
    fn every_optimizer_descends() {
        for name in ["adam", "adamw", "sgd", "rmsprop", "adagrad", "lion"] {
            let s = run(&spec(&format!("_name_: {name}, momentum: 0.5")), 0.5, 60);
            let dist = |w: [f32; 2]| (w[0] - 3.0).abs() + (w[1] - 3.0).abs();
            assert!(dist(s[59]) < 0.25 * dist([1.0, -1.0]), "{name}: {:?}", s[59]);
        }
    }

    #[test]
    fn bad_options_name_their_key() {
        for (yaml, key) in [
            ("_name_: sgd, momentum: -0.1", "optimizer.momentum"),
            ("_name_: sgd, momentum: .nan", "optimizer.momentum"),
            ("_name_: sgd, nesterov: true", "optimizer.nesterov"),
            ("_name_: rmsprop, alpha: 1.5", "optimizer.alpha"),
            ("_name_: adagrad, lr_decay: -1", "optimizer.lr_decay"),
            ("lr: -0.1", "optimizer.lr"),
            ("lr: .nan", "optimizer.lr"),
            ("groups: [{params: x, _name_: sgd, momentum: 2}]", "optimizer.groups.0.momentum"),
            ("groups: [{params: x, lr: -1}]", "optimizer.groups.0.lr"),
        ] {
            let text = if yaml.starts_with("lr:") { format!("{{{yaml}}}") } else { format!("{{lr: 0.1, {yaml}}}") };
            let o: OptimizerConfig = serde_yaml::from_str(&text).unwrap();
            let e = validate(&o).unwrap_err().to_string();
            assert!(e.contains(&format!("`{key}`")), "{yaml}: {e}");
        }
    }
}
