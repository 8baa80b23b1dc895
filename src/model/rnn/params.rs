//! `Module` for [`Recurrent`], written out so that its parameter paths are PyTorch's
//! state_dict keys: the derive would name a `Vec` of cells `cells.0.weight_ih`, PyTorch names
//! them `weight_ih_l0`, `weight_ih_l0_reverse`, `weight_ih_l1`, ….

use burn::module::{
    Content, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor, {Devices, Module},
};
use burn::tensor::Device;

use super::cell::CellParams;
use super::stack::Recurrent;

/// The container type reported to visitors and mappers.
const CONTAINER: &str = "Struct:Recurrent";

/// PyTorch's names of cell `k` (layer `k / dirs`, reverse when `k % dirs == 1`), in the field
/// order of [`CellParams`].
pub fn param_names(k: usize, dirs: usize) -> [String; 4] {
    let suffix = format!("_l{}{}", k / dirs, if k % dirs == 1 { "_reverse" } else { "" });
    ["weight_ih", "weight_hh", "bias_ih", "bias_hh"].map(|n| format!("{n}{suffix}"))
}

/// Rebuilds every cell, passing each of its four parameters through `$f` (by value) with its
/// PyTorch name in scope as `$name`.
macro_rules! map_cells {
    ($cells:expr, $dirs:expr, |$p:ident, $name:ident| $f:expr) => {{
        let dirs = $dirs;
        let cells: Vec<CellParams> = $cells
            .into_iter()
            .enumerate()
            .map(|(k, c)| {
                let names = param_names(k, dirs);
                #[allow(unused_variables)]
                let [n0, n1, n2, n3] = [&names[0], &names[1], &names[2], &names[3]];
                CellParams {
                    weight_ih: {
                        let ($p, $name) = (c.weight_ih, n0.as_str());
                        $f
                    },
                    weight_hh: {
                        let ($p, $name) = (c.weight_hh, n1.as_str());
                        $f
                    },
                    bias_ih: {
                        let ($p, $name) = (c.bias_ih, n2.as_str());
                        $f
                    },
                    bias_hh: {
                        let ($p, $name) = (c.bias_hh, n3.as_str());
                        $f
                    },
                }
            })
            .collect();
        cells
    }};
}

/// Maps the cells' parameters by `$f` (see `map_cells!`) and the extras by `$e`.
macro_rules! map_layer {
    ($self:expr, |$p:ident, $name:ident| $f:expr, |$x:ident| $e:expr) => {{
        let Recurrent { cells, extras, kind, bidirectional } = $self;
        let cells = map_cells!(cells, if bidirectional { 2 } else { 1 }, |$p, $name| $f);
        let $x = extras;
        Recurrent { cells, extras: $e, kind, bidirectional }
    }};
}

impl Module for Recurrent {
    fn collect_devices(&self, mut devices: Devices) -> Devices {
        for c in &self.cells {
            devices = Module::collect_devices(&c.weight_ih, devices);
            devices = Module::collect_devices(&c.weight_hh, devices);
            devices = Module::collect_devices(&c.bias_ih, devices);
            devices = Module::collect_devices(&c.bias_hh, devices);
        }
        self.extras.collect_devices(devices)
    }

    fn fork(self, device: &Device) -> Self {
        map_layer!(self, |p, _n| Module::fork(p, device), |e| e.fork(device))
    }

    fn to_device(self, device: &Device) -> Self {
        map_layer!(self, |p, _n| Module::to_device(p, device), |e| e.to_device(device))
    }

    fn train(self) -> Self {
        map_layer!(self, |p, _n| Module::train(p), |e| e.train())
    }

    fn valid(&self) -> Self {
        map_layer!(self.clone(), |p, _n| Module::valid(&p), |e| e.valid())
    }

    fn materialize(self) -> Self {
        map_layer!(self, |p, _n| Module::materialize(p), |e| e.materialize())
    }

    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        let dirs = if self.bidirectional { 2 } else { 1 };
        for (k, c) in self.cells.iter().enumerate() {
            let [n0, n1, n2, n3] = param_names(k, dirs);
            visitor.enter_module(&n0, CONTAINER);
            Module::visit(&c.weight_ih, visitor);
            visitor.exit_module(&n0, CONTAINER);
            visitor.enter_module(&n1, CONTAINER);
            Module::visit(&c.weight_hh, visitor);
            visitor.exit_module(&n1, CONTAINER);
            visitor.enter_module(&n2, CONTAINER);
            Module::visit(&c.bias_ih, visitor);
            visitor.exit_module(&n2, CONTAINER);
            visitor.enter_module(&n3, CONTAINER);
            Module::visit(&c.bias_hh, visitor);
            visitor.exit_module(&n3, CONTAINER);
        }
        // The extras' own field names (`dropout`, `output_linear`) at the layer's level.
        self.extras.visit(visitor);
    }

    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        map_layer!(
            self,
            |p, name| {
                mapper.enter_module(name, CONTAINER);
                let p = Module::map(p, mapper);
                mapper.exit_module(name, CONTAINER);
                p
            },
            |e| e.map(mapper)
        )
    }
}

impl ModuleDisplayDefault for Recurrent {
    fn content(&self, content: Content) -> Option<Content> {
        content
            .set_top_level_type("Recurrent")
            .add_debug_attribute("kind", &self.kind)
            .add_debug_attribute("cells", &self.cells.len())
            .add_debug_attribute("bidirectional", &self.bidirectional)
            .add("extras", &self.extras)
            .optional()
    }

    fn num_params(&self) -> usize {
        Module::num_params(self)
    }
}

impl ModuleDisplay for Recurrent {}

impl std::fmt::Display for Recurrent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&ModuleDisplay::format(self, Default::default()))
    }
}
