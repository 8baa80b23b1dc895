//! Finding what went non-finite (the loss, the gradients, a validation metric or a parameter),
//! so the trainer can say which step and which tensor, and never checkpoint it.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// A non-finite value met while training.
#[derive(Debug, Clone, PartialEq)]
pub enum NonFinite {
    /// The training loss of a micro-batch.
    Loss {
        /// Its value.
        value: f64,
        /// Optimizer step.
        step: usize,
        /// Epoch (0-based).
        epoch: usize,
    },
    /// The global gradient norm of an optimizer step.
    GradNorm {
        /// Optimizer step.
        step: usize,
        /// Epoch (0-based).
        epoch: usize,
    },
    /// A validation metric.
    Metric {
        /// Its name.
        name: String,
        /// Its value.
        value: f64,
        /// Epoch (0-based).
        epoch: usize,
    },
    /// A parameter tensor.
    Param {
        /// Its module path.
        path: String,
        /// Optimizer step.
        step: usize,
    },
}

impl std::fmt::Display for NonFinite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NonFinite::Loss { value, step, epoch } => {
                write!(f, "the training loss became {value} at step {step} (epoch {})", epoch + 1)
            }
            NonFinite::GradNorm { step, epoch } => {
                write!(f, "the gradients became non-finite at step {step} (epoch {})", epoch + 1)
            }
            NonFinite::Metric { name, value, epoch } => {
                write!(f, "validation metric {name} is {value} (epoch {})", epoch + 1)
            }
            NonFinite::Param { path, step } => {
                write!(f, "parameter `{path}` holds non-finite values after step {step}")
            }
        }
    }
}

/// The first non-finite metric, if any.
pub fn in_metrics(m: &BTreeMap<String, f64>, _step: usize, epoch: usize) -> Option<NonFinite> {
    m.iter().find(|(_, v)| !v.is_finite()).map(|(k, v)| NonFinite::Metric { name: k.clone(), value: *v, epoch })
}

/// The first parameter tensor holding a NaN or an infinity, if any.
pub fn in_params<M: Module>(model: &M, step: usize, _epoch: usize) -> Option<NonFinite> {
    struct Find {
        path: Vec<String>,
        bad: Option<String>,
    }
    impl ModuleVisitor for Find {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.bad.is_none() && !finite(param.val()) {
                self.bad = Some(self.path.join("."));
            }
        }
    }
    let mut v = Find { path: vec![], bad: None };
    model.visit(&mut v);
    v.bad.map(|path| NonFinite::Param { path, step })
}

/// Whether every element is finite (one reduction: NaN and ±inf survive a sum of x·0).
fn finite<const D: usize>(t: Tensor<D>) -> bool {
    let s = (t * 0.0).sum().into_scalar::<f64>();
    s == 0.0
}
