//! Serving a SavedModel as TensorFlow Serving does: its REST API ([`rest`], axum) and gRPC
//! API ([`grpc`], tonic) over one [`engine::Engine`] that holds the loaded model
//! ([`model`]), with TensorFlow Serving's version policy and hot swapping, request
//! metrics ([`metrics`]) and the JSON codec of the REST API ([`codec`]).
//!
//! [`server::serve`] runs it all (it is `rustflow serve`).

pub mod batching;
pub mod codec;
pub mod dispatch;
pub mod engine;
pub mod examples;
pub mod grpc;
pub mod metrics;
pub mod model;
pub mod numbers;
pub mod rest;
pub mod server;
pub mod sharded;
pub mod status;

pub use server::{serve, ServeConfig};
pub use status::Status;
