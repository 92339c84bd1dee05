//! Walking a module's float parameters in a fixed order: their names, shapes and values, and
//! replacing them. The optimizer, the EMA and checkpoints all rely on this one order (the
//! order in which burn visits the module's fields).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};

/// Name and shape of one parameter tensor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParamInfo {
    /// Dotted path, e.g. `down.0.res.conv1.weight`.
    pub name: String,
    /// Dimensions.
    pub shape: Vec<usize>,
}

impl ParamInfo {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True for a tensor without values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct Lister {
    path: Vec<String>,
    out: Vec<ParamInfo>,
}

impl ModuleVisitor for Lister {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.out.push(ParamInfo {
            name: self.path.join("."),
            shape: param.lazy_shape().to_vec(),
        });
    }
}

/// Names and shapes of every float parameter of `module`, in visiting order.
pub fn param_infos<M: Module>(module: &M) -> Vec<ParamInfo> {
    let mut lister = Lister {
        path: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut lister);
    lister.out
}

struct Flattener {
    out: Vec<Tensor<1>>,
}

impl ModuleVisitor for Flattener {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val().inner();
        let n = t.shape().num_elements();
        self.out.push(t.reshape([n]));
    }
}

/// Every float parameter of `module`, flattened and without autodiff, in visiting order.
pub fn flat_params<M: Module>(module: &M) -> Vec<Tensor<1>> {
    let mut f = Flattener { out: Vec::new() };
    module.visit(&mut f);
    f.out
}

/// Host copies of flattened tensors.
pub fn to_host(tensors: &[Tensor<1>]) -> Vec<Vec<f32>> {
    tensors
        .iter()
        .map(|t| {
            t.clone()
                .try_into_vec_as::<f32>()
                .expect("a parameter tensor reads back from its device")
        })
        .collect()
}

/// Flattened device tensors from host values.
pub fn from_host(values: &[Vec<f32>], device: &Device) -> Vec<Tensor<1>> {
    values
        .iter()
        .map(|v| Tensor::from_data(TensorData::new(v.clone(), [v.len()]), device))
        .collect()
}

struct Replacer<'a> {
    values: &'a [Tensor<1>],
    next: usize,
    trainable: bool,
}

impl ModuleMapper for Replacer<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let dims = tensor.dims();
        let value = self.values[self.next].clone().reshape(dims);
        self.next += 1;
        let value = if self.trainable {
            Tensor::from_inner(value).require_grad()
        } else {
            value
        };
        Param::from_mapped_value(id, value, mapper)
    }
}

/// `module` with its float parameters replaced, in visiting order, by `values` (flattened,
/// same sizes: the caller checks them against [`param_infos`]). `trainable` puts them back
/// under autodiff with gradients required.
pub fn replace_params<M: Module>(module: M, values: &[Tensor<1>], trainable: bool) -> M {
    let mut replacer = Replacer {
        values,
        next: 0,
        trainable,
    };
    module.map(&mut replacer)
}
