//! TensorFlow Serving's REST API (`api_rest.md`) on axum: model status, metadata and
//! predict under `/v1/models/NAME[/versions/N]`, and `/monitoring/prometheus/metrics`.
//! Errors are `{"error": "..."}` with TensorFlow Serving's HTTP status codes.

use super::codec::{self, Format, Inputs};
use super::engine::Engine;
use super::examples::{parse_examples_request, run_examples, ExampleApi};
use super::metrics::Api;
use super::model::Servable;
use super::numbers::{self, Numbers};
use super::status::Status;
use crate::proto::tf::error::Code;
use crate::saved_model::DEFAULT_SIGNATURE;
use crate::{DType, Tensor};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt;
use percent_encoding::percent_decode_str;
use serde_json::json;
use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;
use tower::{Service, ServiceExt};

/// The REST service over an engine, with `GET /reference` when `reference` (a fixed
/// 200 JSON body through the same service: what the HTTP stack alone serves, the load
/// benchmark's reference, `benches/serve_load.sh`). `/v1/models/...` and `/reference` are
/// matched here, before axum's router, which serves the other paths: a path only a
/// router's fallback (or a wildcard route) matches costs axum three allocations for its
/// captured parameter and a boxed handler future on every request.
pub fn service(
    engine: Arc<Engine>,
    reference: bool,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send>
       + Clone
       + Send
       + Sync
       + 'static {
    let front = Arc::new(Front {
        router: routes().with_state(engine.clone()),
        engine,
        reference,
    });
    tower::service_fn(move |req: Request| {
        let front = Arc::clone(&front);
        async move { Ok(front.answer(req).await) }
    })
}

/// What [`service`] routes with.
struct Front {
    engine: Arc<Engine>,
    /// The paths other than `/v1/models/...` and `/reference`.
    router: Router,
    /// Whether `GET /reference` is served.
    reference: bool,
}

impl Front {
    /// The answer to `req`, logged on stderr when the access log is on (method, path,
    /// status, microseconds).
    async fn answer(&self, req: Request) -> Response {
        if !self.engine.access_log {
            return self.route(req).await;
        }
        let start = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let response = self.route(req).await;
        eprintln!(
            "{method} {path} {} {}us",
            response.status().as_u16(),
            start.elapsed().as_micros()
        );
        response
    }

    async fn route(&self, req: Request) -> Response {
        let path = req.uri().path();
        if path.starts_with("/v1/models/") {
            let (parts, body) = req.into_parts();
            let rest = &parts.uri.path()["/v1/models/".len()..];
            return models(&self.engine, &parts.method, rest, body).await;
        }
        if self.reference && path == "/reference" && req.method() == Method::GET {
            return json_response(StatusCode::OK, reference_body(req.uri().query()));
        }
        match self.router.clone().oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// The longest `/reference?bytes=N` body.
const MAX_REFERENCE_BYTES: usize = 1 << 20;

/// `GET /reference`'s body: `{"ok": true}`, or with `?bytes=N` a JSON object of N bytes
/// (at least 23, at most [`MAX_REFERENCE_BYTES`]): a fixed answer as long as another
/// route's, to tell what the answer's length costs from what its making costs.
fn reference_body(query: Option<&str>) -> Bytes {
    const SHORT: &[u8] = br#"{"ok": true}"#;
    const PADDED: &[u8] = br#"{"ok": true, "pad": ""#;
    let bytes = query
        .and_then(|q| q.strip_prefix("bytes="))
        .and_then(|n| n.parse::<usize>().ok());
    match bytes {
        Some(n) if n > SHORT.len() => {
            // `{"ok": true, "pad": "xx…"}`.
            let pad = n.min(MAX_REFERENCE_BYTES).saturating_sub(PADDED.len() + 2);
            let mut body = Vec::with_capacity(PADDED.len() + pad + 2);
            body.extend_from_slice(PADDED);
            body.resize(body.len() + pad, b'x');
            body.extend_from_slice(br#""}"#);
            Bytes::from(body)
        }
        _ => Bytes::from_static(SHORT),
    }
}

/// The paths [`service`] leaves to axum: the metrics, and TensorFlow Serving's 404 for
/// any path it does not serve.
fn routes() -> Router<Arc<Engine>> {
    Router::new()
        .route("/monitoring/prometheus/metrics", get(prometheus))
        .fallback(unknown)
}

/// A JSON answer: the body as it is, the content type a static header value.
fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn error_response(s: &Status) -> Response {
    let code = StatusCode::from_u16(s.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, json!({ "error": s.message }).to_string().into())
}

async fn unknown(req: Request) -> Response {
    error_response(&Status::not_found(format!(
        "no such endpoint: {} {}",
        req.method(),
        req.uri().path()
    )))
}

async fn prometheus(State(engine): State<Arc<Engine>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        engine.render_metrics(),
    )
        .into_response()
}

/// What a `/v1/models/...` path asks for.
#[derive(Debug, PartialEq)]
struct Target<'a> {
    name: &'a str,
    version: Option<i64>,
    what: What<'a>,
}

#[derive(Debug, PartialEq)]
enum What<'a> {
    Status,
    Metadata,
    /// `:predict`, `:classify`, `:regress`.
    Verb(&'a str),
}

/// Parses `NAME[/versions/N][/metadata]` or `NAME[/versions/N]:VERB`.
fn parse_target(rest: &str) -> Option<Target<'_>> {
    let (path, verb) = match rest.rsplit_once(':') {
        Some((p, v)) if !v.contains('/') => (p, Some(v)),
        _ => (rest, None),
    };
    let mut parts = path.split('/');
    let name = parts.next().filter(|n| !n.is_empty())?;
    let mut version = None;
    let mut metadata = false;
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (None, ..) => {}
        (Some("metadata"), None, ..) => metadata = true,
        (Some("versions"), Some(v), m, None) => {
            version = Some(v.parse::<i64>().ok().filter(|v| *v >= 0)?);
            match m {
                None => {}
                Some("metadata") => metadata = true,
                Some(_) => return None,
            }
        }
        _ => return None,
    }
    let what = match (verb, metadata) {
        (None, false) => What::Status,
        (None, true) => What::Metadata,
        (Some(v), false) => What::Verb(v),
        (Some(_), true) => return None,
    };
    Some(Target {
        name,
        version,
        what,
    })
}

/// A `/v1/models/` request; `raw` is the path after that prefix, percent-encoded.
async fn models(engine: &Arc<Engine>, method: &Method, raw: &str, body: Body) -> Response {
    let start = Instant::now();
    let malformed = || Status::invalid(format!("Malformed request: {method} /v1/models/{raw}"));
    // Borrowed as it is unless it holds a `%`.
    let rest = percent_decode_str(raw).decode_utf8();
    let target = rest.as_deref().ok().and_then(parse_target);
    let api_method = match &target {
        Some(Target {
            what: What::Verb(v),
            ..
        }) => match *v {
            "predict" => "predict",
            "classify" => "classify",
            "regress" => "regress",
            _ => "other",
        },
        Some(Target {
            what: What::Metadata,
            ..
        }) => "metadata",
        Some(_) => "status",
        None => "other",
    };
    let result = async {
        let t = target.ok_or_else(malformed)?;
        match (method, &t.what) {
            (&Method::GET, What::Status) => status(engine, &t).map(Bytes::from),
            (&Method::GET, What::Metadata) => metadata(engine, &t).map(Bytes::from),
            (&Method::POST, What::Verb("predict")) => {
                let body = read_body(engine, body).await?;
                predict(engine, &t, body).await
            }
            (&Method::POST, What::Verb(v @ ("classify" | "regress"))) => {
                let api = match *v {
                    "classify" => ExampleApi::Classify,
                    _ => ExampleApi::Regress,
                };
                engine.model.check_name(t.name)?;
                let servable = engine.model.get(t.version)?;
                let body = read_body(engine, body).await?;
                let request = parse_examples_request(&body)?;
                let signature = request.signature_name.clone().unwrap_or_default();
                engine
                    .dispatch
                    .run(rest_api(api_method), &signature, body.len(), move || {
                        run_examples(&servable, api, request).map(|r| r.to_json().into())
                    })
                    .await
            }
            _ => Err(malformed()),
        }
    }
    .await;
    let (response, code) = match result {
        Ok(body) => (json_response(StatusCode::OK, body), "OK"),
        Err(s) => (error_response(&s), s.code_name()),
    };
    engine
        .metrics
        .record(rest_api(api_method), code, start.elapsed());
    response
}

/// A REST API method, as metrics and run costs are keyed.
fn rest_api(method: &'static str) -> Api {
    Api {
        entrypoint: "REST",
        method,
    }
}

/// The request body, up to the server's limit, within the request timeout (a client may
/// send it slowly). A body that arrives in one frame (hyper's, when the whole request is
/// in its read buffer) is that frame's bytes as they are; one of several frames is
/// copied into one buffer.
async fn read_body(engine: &Engine, body: Body) -> Result<Bytes, Status> {
    let limit = engine.max_body_bytes;
    let read = async {
        let mut body = body;
        let mut first: Option<Bytes> = None;
        let mut joined: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| Status::invalid(format!("could not read the request body: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let read = first.as_ref().map_or(0, Bytes::len).max(joined.len()) + data.len();
            if read > limit {
                return Err(Status::new(
                    Code::ResourceExhausted,
                    format!("the request body is larger than the server's limit of {limit} bytes"),
                ));
            }
            match &first {
                None => first = Some(data),
                Some(f) => {
                    if joined.is_empty() {
                        joined.extend_from_slice(f);
                    }
                    joined.extend_from_slice(&data);
                }
            }
        }
        Ok(match joined.is_empty() {
            true => first.unwrap_or_default(),
            false => Bytes::from(joined),
        })
    };
    engine.dispatch.within_timeout(read).await
}

fn status(engine: &Engine, t: &Target<'_>) -> Result<String, Status> {
    engine.model.check_name(t.name)?;
    let versions: Vec<serde_json::Value> = engine
        .model
        .statuses(t.version)?
        .into_iter()
        .map(|(v, s)| {
            let (code, message) = match &s.error {
                None => ("OK", ""),
                Some(e) => (e.code_name(), e.message.as_str()),
            };
            json!({
                "version": v.to_string(),
                "state": s.state.as_str_name(),
                "status": {"error_code": code, "error_message": message},
            })
        })
        .collect();
    Ok(json!({ "model_version_status": versions }).to_string())
}

fn metadata(engine: &Engine, t: &Target<'_>) -> Result<String, Status> {
    engine.model.check_name(t.name)?;
    let s = engine.model.get(t.version)?;
    Ok(json!({
        "model_spec": {
            "name": engine.model.name,
            "signature_name": "",
            "version": s.version.to_string(),
        },
        "metadata": {"signature_def": codec::signature_def_map_json(&s.signature_defs)},
    })
    .to_string())
}

async fn predict(engine: &Arc<Engine>, t: &Target<'_>, body: Bytes) -> Result<Bytes, Status> {
    engine.model.check_name(t.name)?;
    let servable = engine.model.get(t.version)?;
    let (key, format, feeds) = decode_predict(&servable, &body)?;
    let Some(batcher) = &engine.batcher else {
        let signature = key.clone();
        return engine
            .dispatch
            .run(rest_api("predict"), &signature, body.len(), move || {
                let answer = |keys: &[String], values: Vec<Tensor>| {
                    codec::write_predict_response(format, &(keys, &values[..]))
                };
                match feeds {
                    Feeds::Sole(t) => servable.predict_sole(t, answer)?,
                    Feeds::Named(inputs) => servable.predict_then(&key, inputs, &[], answer)?,
                }
            })
            .await;
    };
    let inputs = match feeds {
        Feeds::Sole(t) => vec![(servable.sole_input(None)?.to_string(), t)],
        Feeds::Named(inputs) => inputs,
    };
    let outputs = batcher.run(&servable, &key, inputs, &[]).await?;
    codec::write_predict_response(format, &outputs[..])
}

/// A predict request's inputs, typed by the signature.
enum Feeds {
    /// The default signature's one input (a body of plain numbers, [`numbers`]).
    Sole(Tensor),
    /// Inputs by key.
    Named(Vec<(String, Tensor)>),
}

/// A predict request decoded: the signature's key (borrowed when it is the default one),
/// the format, the typed inputs.
type DecodedPredict = (Cow<'static, str>, Format, Feeds);

/// A predict body's signature key, format and inputs typed by the signature: a body of
/// plain numbers for the default signature's one float input straight into its tensor
/// ([`numbers`](super::numbers)), anything else through the JSON tree.
fn decode_predict(servable: &Servable, body: &[u8]) -> Result<DecodedPredict, Status> {
    if let Ok((_, sig)) = servable.signature(None) {
        let mut inputs = sig.inputs.iter();
        if let (Some((k, info)), None) = (inputs.next(), inputs.next()) {
            let read = match info.dtype() {
                Some(DType::Float32) => numbers::parse::<f32>(body).map(Numbers::into_tensor),
                Some(DType::Float64) => numbers::parse::<f64>(body).map(Numbers::into_tensor),
                _ => None,
            };
            if let Some((format, t)) = read {
                let t = t.map_err(|e| Status::invalid(format!("input '{k}': {e}")))?;
                let t = codec::fit_to_shape(t, &info.shape);
                return Ok((DEFAULT_SIGNATURE.into(), format, Feeds::Sole(t)));
            }
        }
    }
    let request = codec::parse_predict(body)?;
    let (key, inputs) = typed_inputs(servable, &request)?;
    Ok((key.into(), request.format, Feeds::Named(inputs)))
}

/// A decoded request's inputs typed by its signature, with the signature's key.
fn typed_inputs(
    servable: &Servable,
    request: &codec::PredictRequest,
) -> Result<(String, Vec<(String, Tensor)>), Status> {
    let (key, sig) = servable.signature(request.signature_name.as_deref())?;
    let typed = |k: &str, v: &serde_json::Value| -> Result<Tensor, Status> {
        let info = sig.inputs.get(k).ok_or_else(|| {
            Status::invalid(format!(
                "signature '{key}' has no input '{k}'; its inputs: {}",
                sig.inputs.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        let dtype = info.dtype().ok_or_else(|| {
            Status::invalid(format!(
                "input '{k}' of signature '{key}' has dtype {}, which rustflow does not support",
                crate::proto::dtype_name(info.tf_dtype)
            ))
        })?;
        codec::json_to_tensor(v, dtype, k).map(|t| codec::fit_to_shape(t, &info.shape))
    };
    let inputs: Vec<(String, Tensor)> = match &request.inputs {
        Inputs::Single(v) => {
            let k = servable.sole_input(request.signature_name.as_deref())?;
            vec![(k.to_string(), typed(k, v)?)]
        }
        Inputs::Named(m) => m
            .iter()
            .map(|(k, v)| Ok((k.clone(), typed(k, v)?)))
            .collect::<Result<_, Status>>()?,
    };
    Ok((key.to_string(), inputs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_tf_serving_parses_them() {
        let t = |name, version, what| {
            Some(Target {
                name,
                version,
                what,
            })
        };
        assert_eq!(parse_target("m"), t("m", None, What::Status));
        assert_eq!(parse_target("m/versions/3"), t("m", Some(3), What::Status));
        assert_eq!(parse_target("m/metadata"), t("m", None, What::Metadata));
        assert_eq!(
            parse_target("m/versions/3/metadata"),
            t("m", Some(3), What::Metadata)
        );
        assert_eq!(
            parse_target("m:predict"),
            t("m", None, What::Verb("predict"))
        );
        assert_eq!(
            parse_target("m/versions/7:regress"),
            t("m", Some(7), What::Verb("regress"))
        );
        for bad in [
            "",
            "m/versions",
            "m/versions/x",
            "m/versions/-1",
            "m/versions/1/2",
            "m/metadata:predict",
            "m/labels/stable",
            "m/other",
        ] {
            assert_eq!(parse_target(bad), None, "{bad}");
        }
    }
}
