//! Keras on the graph engine: `Sequential` models of layers, built lazily from the first
//! input shape, trained with `compile` / `fit` / `evaluate` / `predict`, saved as a
//! SavedModel with their Keras config.
//!
//! Keras only builds graph: the forward pass, the loss, the gradients
//! ([`crate::autodiff`]) and the optimizer's updates (the `Apply*` ops) are ordinary
//! nodes of one [`crate::Graph`], run by one [`crate::Session`]; `fit` feeds each batch
//! into a prepared session callable.
//!
//! ```
//! use rustflow::keras::layers::Dense;
//! use rustflow::keras::Sequential;
//! use rustflow::Tensor;
//!
//! let mut model = Sequential::new(vec![
//!     Dense::new(128).activation("relu").into(),
//!     Dense::new(10).activation("softmax").into(),
//! ])?;
//! model.build(&[None, Some(64)])?;
//! let probs = model.call(&Tensor::full(&[1, 64], 0.5f32))?;
//! assert_eq!(probs.shape(), &[1, 10]);
//! # Ok::<(), rustflow::Error>(())
//! ```

mod activations;
pub mod callbacks;
mod config;
mod functional;
mod functional_config;
pub mod initializers;
mod layer;
pub mod layers;
pub mod losses;
pub mod metrics;
mod network;
pub mod optimizers;
mod progress;
pub mod regularizers;
mod saving;
mod sequential;
mod summary;
mod tensorboard;
mod trainer;

pub use activations::Activation;
pub use callbacks::{Callback, CallbackModel, History, Logs};
pub use config::model_from_json;
pub use functional::{Apply, KerasTensor, LayerRef, Model, PerOutput};
pub use functional_config::functional_from_json;
pub use layer::{
    clear_session, format_shape, set_random_seed, set_session_options, unique_name, CallContext,
    Layer, Shape, Weight,
};
pub use losses::Loss;
pub use metrics::Metric;
pub use optimizers::{LearningRate, Optimizer};
pub use regularizers::Regularizer;
pub use saving::{load_model, Loadable, CONFIG_FILE, OUTPUT_KEY};
pub use sequential::Sequential;
pub use trainer::FitOptions;
