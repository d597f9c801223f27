//! TensorFlow Serving's gRPC API on tonic: `tensorflow.serving.PredictionService`
//! (`Predict`, `Classify`, `Regress`, `MultiInference`, `GetModelMetadata`) and
//! `tensorflow.serving.ModelService`
//! (`GetModelStatus`), with TensorFlow Serving's messages, so its clients
//! (`PredictionServiceStub`) work unchanged.

use super::batching::Batcher;
use super::engine::Engine;
use super::examples::{
    run_example_tasks, run_examples, with_context, ExampleApi, ExampleResult, ExamplesRequest,
};
use super::metrics::Api;
use super::model::Servable;
use super::status::Status;
use crate::proto::google::protobuf::{Any, Int64Value};
use crate::proto::tf::error::Code;
use crate::proto::tf::serving::{
    self as tfs, model_service_server::ModelService, model_service_server::ModelServiceServer,
    prediction_service_server::PredictionService,
    prediction_service_server::PredictionServiceServer,
};
use crate::proto::{tensor_from_proto, tensor_to_proto};
use crate::saved_model::DEFAULT_SIGNATURE;
use crate::Tensor;
use prost::Message;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tonic::{Request, Response};

/// A predict request decoded: the servable, the signature's key and the inputs by key.
type PredictInputs = (Arc<Servable>, String, Vec<(String, Tensor)>);

/// The gRPC services over an engine.
#[derive(Clone, Debug)]
pub struct Services {
    engine: Arc<Engine>,
}

/// Serves both services on `listener` until `stop` completes.
pub async fn serve(
    engine: Arc<Engine>,
    listener: tokio::net::TcpListener,
    stop: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let s = Services { engine };
    tonic::transport::Server::builder()
        .add_service(PredictionServiceServer::new(s.clone()))
        .add_service(ModelServiceServer::new(s))
        .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), stop)
        .await
}

/// The version a `ModelSpec` asks for; labels are not supported.
fn spec_version(spec: &tfs::ModelSpec) -> Result<Option<i64>, Status> {
    match &spec.version_choice {
        None => Ok(None),
        Some(tfs::model_spec::VersionChoice::Version(v)) => Ok(Some(v.value)),
        Some(tfs::model_spec::VersionChoice::VersionLabel(l)) => Err(Status::invalid(format!(
            "version labels are not supported (got '{l}'); ask for a version number or none"
        ))),
    }
}

/// A gRPC API method, as metrics and run costs are keyed.
fn grpc_api(method: &'static str) -> Api {
    Api {
        entrypoint: "GRPC",
        method,
    }
}

/// The signature a model spec names (empty when none), as run costs are keyed.
fn signature_of(spec: Option<&tfs::ModelSpec>) -> String {
    spec.map(|s| s.signature_name.clone()).unwrap_or_default()
}

fn spec(name: &str, version: i64, signature: &str) -> tfs::ModelSpec {
    tfs::ModelSpec {
        name: name.to_string(),
        version_choice: Some(tfs::model_spec::VersionChoice::Version(Int64Value {
            value: version,
        })),
        signature_name: signature.to_string(),
    }
}

/// The serialized examples of a classify or regress request's `Input` (each with the
/// context's features it lacks, as TensorFlow Serving merges them).
fn serialized_examples(input: Option<tfs::Input>) -> Result<Vec<Vec<u8>>, Status> {
    use tfs::input::Kind;
    let (examples, context) = match input.and_then(|i| i.kind) {
        Some(Kind::ExampleList(l)) => (l.examples, None),
        Some(Kind::ExampleListWithContext(l)) => (l.examples, l.context),
        None => (Vec::new(), None),
    };
    if examples.is_empty() {
        return Err(Status::invalid("Input is empty."));
    }
    let context = context
        .and_then(|c| c.features)
        .map(|f| f.feature)
        .unwrap_or_default();
    Ok(examples
        .into_iter()
        .map(|e| with_context(&context, e.features.map(|f| f.feature).unwrap_or_default()))
        .collect())
}

/// A classify or regress result as TensorFlow Serving's proto.
fn result_proto(result: ExampleResult) -> tfs::inference_result::Result {
    use tfs::inference_result::Result as R;
    match result {
        ExampleResult::Classifications(per_example) => {
            R::ClassificationResult(tfs::ClassificationResult {
                classifications: per_example
                    .into_iter()
                    .map(|classes| tfs::Classifications {
                        classes: classes
                            .into_iter()
                            .map(|(label, score)| tfs::Class {
                                label: String::from_utf8_lossy(&label).into_owned(),
                                score,
                            })
                            .collect(),
                    })
                    .collect(),
            })
        }
        ExampleResult::Regressions(values) => R::RegressionResult(tfs::RegressionResult {
            regressions: values
                .into_iter()
                .map(|value| tfs::Regression { value })
                .collect(),
        }),
    }
}

impl Services {
    /// Runs a handler, recording its outcome in the metrics.
    fn timed<T>(
        &self,
        method: &'static str,
        f: impl FnOnce() -> Result<T, Status>,
    ) -> Result<Response<T>, tonic::Status> {
        let start = Instant::now();
        let r = f();
        self.finish(method, start, r)
    }

    /// Records the outcome of a request that began at `start` in the metrics.
    fn finish<T>(
        &self,
        method: &'static str,
        start: Instant,
        r: Result<T, Status>,
    ) -> Result<Response<T>, tonic::Status> {
        let code = match &r {
            Ok(_) => "OK",
            Err(s) => s.code_name(),
        };
        self.engine
            .metrics
            .record(grpc_api(method), code, start.elapsed());
        r.map(Response::new).map_err(tonic::Status::from)
    }

    /// A predict request's servable, signature key and decoded inputs.
    fn predict_inputs(&self, req: &tfs::PredictRequest) -> Result<PredictInputs, Status> {
        let model_spec = req
            .model_spec
            .as_ref()
            .ok_or_else(|| Status::invalid("Missing ModelSpec"))?;
        self.engine.model.check_name(&model_spec.name)?;
        let servable = self.engine.model.get(spec_version(model_spec)?)?;
        let key = if model_spec.signature_name.is_empty() {
            DEFAULT_SIGNATURE
        } else {
            &model_spec.signature_name
        };
        let mut inputs = Vec::with_capacity(req.inputs.len());
        for (k, p) in &req.inputs {
            let t =
                tensor_from_proto(p).map_err(|e| Status::invalid(format!("input '{k}': {e}")))?;
            inputs.push((k.clone(), t));
        }
        Ok((servable, key.to_string(), inputs))
    }

    /// The answer to a predict request.
    fn predict_response(
        &self,
        servable: &Servable,
        key: &str,
        outputs: &[(String, Tensor)],
    ) -> tfs::PredictResponse {
        tfs::PredictResponse {
            model_spec: Some(spec(&self.engine.model.name, servable.version, key)),
            outputs: outputs
                .iter()
                .map(|(k, t)| (k.clone(), tensor_to_proto(t)))
                .collect(),
        }
    }

    fn predict_now(&self, req: tfs::PredictRequest) -> Result<tfs::PredictResponse, Status> {
        let (servable, key, inputs) = self.predict_inputs(&req)?;
        let outputs = servable.predict(&key, inputs, &req.output_filter)?;
        Ok(self.predict_response(&servable, &key, &outputs))
    }

    /// A predict request through the batcher: decoded here, merged, answered here.
    async fn predict_batched(
        &self,
        batcher: &Batcher,
        req: tfs::PredictRequest,
    ) -> Result<tfs::PredictResponse, Status> {
        let (servable, key, inputs) = self.predict_inputs(&req)?;
        let outputs = batcher
            .run(&servable, &key, inputs, &req.output_filter)
            .await?;
        Ok(self.predict_response(&servable, &key, &outputs))
    }

    /// Runs a `Classify` or `Regress` request: the effective model spec and the result.
    fn examples_now(
        &self,
        api: ExampleApi,
        model_spec: Option<tfs::ModelSpec>,
        input: Option<tfs::Input>,
    ) -> Result<(tfs::ModelSpec, ExampleResult), Status> {
        let model_spec = model_spec.ok_or_else(|| Status::invalid("Missing ModelSpec"))?;
        self.engine.model.check_name(&model_spec.name)?;
        let servable = self.engine.model.get(spec_version(&model_spec)?)?;
        let signature_name = Some(model_spec.signature_name).filter(|s| !s.is_empty());
        let key = servable.signature(signature_name.as_deref())?.0.to_string();
        let request = ExamplesRequest {
            signature_name,
            examples: serialized_examples(input)?,
        };
        let result = run_examples(&servable, api, request)?;
        Ok((
            spec(&self.engine.model.name, servable.version, &key),
            result,
        ))
    }

    fn classify_now(
        &self,
        req: tfs::ClassificationRequest,
    ) -> Result<tfs::ClassificationResponse, Status> {
        let (model_spec, result) =
            self.examples_now(ExampleApi::Classify, req.model_spec, req.input)?;
        let tfs::inference_result::Result::ClassificationResult(result) = result_proto(result)
        else {
            return Err(Status::new(Code::Internal, "classify gave no classes"));
        };
        Ok(tfs::ClassificationResponse {
            model_spec: Some(model_spec),
            result: Some(result),
        })
    }

    fn regress_now(&self, req: tfs::RegressionRequest) -> Result<tfs::RegressionResponse, Status> {
        let (model_spec, result) =
            self.examples_now(ExampleApi::Regress, req.model_spec, req.input)?;
        let tfs::inference_result::Result::RegressionResult(result) = result_proto(result) else {
            return Err(Status::new(Code::Internal, "regress gave no values"));
        };
        Ok(tfs::RegressionResponse {
            model_spec: Some(model_spec),
            result: Some(result),
        })
    }

    /// Runs a `MultiInference` request as TensorFlow Serving does: every task names the
    /// same model and a different signature, of method classify or regress; the version
    /// is the first task's; the tasks' signatures get the same examples, in one run when they
    /// read the same input tensor ([`run_example_tasks`]), and the results come back in the
    /// tasks' order.
    fn multi_inference_now(
        &self,
        req: tfs::MultiInferenceRequest,
    ) -> Result<tfs::MultiInferenceResponse, Status> {
        if req.tasks.is_empty() {
            return Err(Status::invalid("Expected at least one task"));
        }
        let mut tasks = Vec::with_capacity(req.tasks.len());
        for task in &req.tasks {
            let model_spec = task
                .model_spec
                .as_ref()
                .ok_or_else(|| Status::invalid("Missing ModelSpec"))?;
            if model_spec.name.is_empty() {
                return Err(Status::invalid("Found ModelSpec with an empty model name."));
            }
            if model_spec.name != req.tasks[0].model_spec.as_ref().map_or("", |m| &m.name) {
                return Err(Status::invalid(
                    "All ModelSpecs in a MultiInferenceRequest must access the same model name.",
                ));
            }
            let signature = Some(model_spec.signature_name.as_str()).filter(|s| !s.is_empty());
            let key = |s: Option<&str>| s.unwrap_or(DEFAULT_SIGNATURE).to_string();
            if tasks.iter().any(|(s, _)| key(*s) == key(signature)) {
                return Err(Status::invalid(format!(
                    "Duplicate evaluation of signature: {}",
                    key(signature)
                )));
            }
            let api = ExampleApi::from_method_name(&task.method_name).ok_or_else(|| {
                Status::new(
                    Code::Unimplemented,
                    format!("Unsupported signature method_name: {}", task.method_name),
                )
            })?;
            tasks.push((signature, api));
        }
        let first = req.tasks[0].model_spec.as_ref();
        let first = first.ok_or_else(|| Status::invalid("Missing ModelSpec"))?;
        self.engine.model.check_name(&first.name)?;
        let servable = self.engine.model.get(spec_version(first)?)?;
        let examples = serialized_examples(req.input)?;
        let results = run_example_tasks(&servable, &tasks, examples)?;
        let results = tasks
            .iter()
            .zip(results)
            .map(|(&(signature, _), result)| {
                let key = servable.signature(signature)?.0;
                Ok(tfs::InferenceResult {
                    model_spec: Some(spec(&self.engine.model.name, servable.version, key)),
                    result: Some(result_proto(result)),
                })
            })
            .collect::<Result<_, Status>>()?;
        Ok(tfs::MultiInferenceResponse { results })
    }

    /// Runs a handler that runs the model (for `signature`, on a request of `bytes`) where
    /// [`Dispatch`](super::dispatch::Dispatch) puts it (which keeps the request timeout).
    async fn run_model<T: Send + 'static>(
        &self,
        method: &'static str,
        signature: &str,
        bytes: usize,
        f: impl FnOnce(&Services) -> Result<T, Status> + Send + 'static,
    ) -> Result<Response<T>, tonic::Status> {
        let start = Instant::now();
        let this = self.clone();
        let r = self
            .engine
            .dispatch
            .run(grpc_api(method), signature, bytes, move || f(&this))
            .await;
        self.finish(method, start, r)
    }

    fn metadata_now(
        &self,
        req: tfs::GetModelMetadataRequest,
    ) -> Result<tfs::GetModelMetadataResponse, Status> {
        let model_spec = req
            .model_spec
            .ok_or_else(|| Status::invalid("Missing ModelSpec"))?;
        self.engine.model.check_name(&model_spec.name)?;
        if req.metadata_field.is_empty() {
            return Err(Status::invalid(
                "GetModelMetadataRequest must specify at least one metadata_field",
            ));
        }
        if let Some(f) = req.metadata_field.iter().find(|f| *f != "signature_def") {
            return Err(Status::invalid(format!(
                "Metadata field {f} is not supported"
            )));
        }
        let servable = self.engine.model.get(spec_version(&model_spec)?)?;
        let map = tfs::SignatureDefMap {
            signature_def: servable.signature_defs.clone(),
        };
        let any = Any {
            type_url: "type.googleapis.com/tensorflow.serving.SignatureDefMap".to_string(),
            value: map.encode_to_vec(),
        };
        Ok(tfs::GetModelMetadataResponse {
            model_spec: Some(spec(&self.engine.model.name, servable.version, "")),
            metadata: [("signature_def".to_string(), any)].into(),
        })
    }

    fn status_now(
        &self,
        req: tfs::GetModelStatusRequest,
    ) -> Result<tfs::GetModelStatusResponse, Status> {
        let model_spec = req
            .model_spec
            .ok_or_else(|| Status::invalid("Missing ModelSpec"))?;
        self.engine.model.check_name(&model_spec.name)?;
        let statuses = self.engine.model.statuses(spec_version(&model_spec)?)?;
        Ok(tfs::GetModelStatusResponse {
            model_version_status: statuses
                .into_iter()
                .map(|(version, s)| tfs::ModelVersionStatus {
                    version,
                    state: s.state as i32,
                    status: Some(tfs::StatusProto {
                        error_code: s.error.as_ref().map_or(Code::Ok, |e| e.code) as i32,
                        error_message: s.error.map(|e| e.message).unwrap_or_default(),
                    }),
                })
                .collect(),
        })
    }
}

#[tonic::async_trait]
impl PredictionService for Services {
    async fn predict(
        &self,
        request: Request<tfs::PredictRequest>,
    ) -> Result<Response<tfs::PredictResponse>, tonic::Status> {
        let req = request.into_inner();
        if let Some(batcher) = &self.engine.batcher {
            let start = Instant::now();
            // The batcher keeps the request timeout.
            let r = self.predict_batched(batcher, req).await;
            return self.finish("predict", start, r);
        }
        let signature = signature_of(req.model_spec.as_ref());
        self.run_model("predict", &signature, req.encoded_len(), move |s| {
            s.predict_now(req)
        })
        .await
    }

    async fn classify(
        &self,
        request: Request<tfs::ClassificationRequest>,
    ) -> Result<Response<tfs::ClassificationResponse>, tonic::Status> {
        let req = request.into_inner();
        let signature = signature_of(req.model_spec.as_ref());
        self.run_model("classify", &signature, req.encoded_len(), move |s| {
            s.classify_now(req)
        })
        .await
    }

    async fn regress(
        &self,
        request: Request<tfs::RegressionRequest>,
    ) -> Result<Response<tfs::RegressionResponse>, tonic::Status> {
        let req = request.into_inner();
        let signature = signature_of(req.model_spec.as_ref());
        self.run_model("regress", &signature, req.encoded_len(), move |s| {
            s.regress_now(req)
        })
        .await
    }

    async fn multi_inference(
        &self,
        request: Request<tfs::MultiInferenceRequest>,
    ) -> Result<Response<tfs::MultiInferenceResponse>, tonic::Status> {
        let req = request.into_inner();
        let first = req.tasks.first().and_then(|t| t.model_spec.as_ref());
        let signature = signature_of(first);
        self.run_model("multi_inference", &signature, req.encoded_len(), move |s| {
            s.multi_inference_now(req)
        })
        .await
    }

    async fn get_model_metadata(
        &self,
        request: Request<tfs::GetModelMetadataRequest>,
    ) -> Result<Response<tfs::GetModelMetadataResponse>, tonic::Status> {
        self.timed("metadata", || self.metadata_now(request.into_inner()))
    }
}

#[tonic::async_trait]
impl ModelService for Services {
    async fn get_model_status(
        &self,
        request: Request<tfs::GetModelStatusRequest>,
    ) -> Result<Response<tfs::GetModelStatusResponse>, tonic::Status> {
        self.timed("status", || self.status_now(request.into_inner()))
    }
}
