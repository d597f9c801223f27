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
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use percent_encoding::percent_decode_str;
use serde_json::json;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

/// The REST router over an engine.
pub fn router(engine: Arc<Engine>) -> Router {
    with_middleware(routes(), engine)
}

/// [`router`] with `GET /reference` answering a fixed 200 JSON body through the same
/// middleware: what the HTTP stack alone serves, for load benchmarks (`benches/serve_load.sh`).
pub fn router_with_reference(engine: Arc<Engine>) -> Router {
    let reference = get(|| async { json_response(StatusCode::OK, r#"{"ok": true}"#.into()) });
    with_middleware(routes().route("/reference", reference), engine)
}

/// `/v1/models/...` is matched by the fallback ([`models_or_unknown`]) rather than a route
/// with a wildcard parameter, whose captured value axum allocates and percent-decodes into
/// the request's extensions on every request.
fn routes() -> Router<Arc<Engine>> {
    Router::new()
        .route("/monitoring/prometheus/metrics", get(prometheus))
        .fallback(models_or_unknown)
}

/// The routes with the access log when it is on (with `--quiet`, no layer at all).
fn with_middleware(routes: Router<Arc<Engine>>, engine: Arc<Engine>) -> Router {
    let routes = match engine.access_log {
        true => routes.layer(middleware::from_fn(access_log)),
        false => routes,
    };
    routes.with_state(engine)
}

/// One line per request on stderr: method, path, status, microseconds.
async fn access_log(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    eprintln!(
        "{method} {path} {} {}us",
        response.status().as_u16(),
        start.elapsed().as_micros()
    );
    response
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

/// `/v1/models/REST` (see [`routes`]), or TensorFlow Serving's 404 for any other path.
async fn models_or_unknown(State(engine): State<Arc<Engine>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    match parts.uri.path().strip_prefix("/v1/models/") {
        Some(rest) => models(&engine, &parts.method, rest, body).await,
        None => error_response(&Status::not_found(format!(
            "no such endpoint: {} {}",
            parts.method,
            parts.uri.path()
        ))),
    }
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
            (&Method::GET, What::Status) => status(engine, &t),
            (&Method::GET, What::Metadata) => metadata(engine, &t),
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
                        run_examples(&servable, api, request).map(|r| r.to_json())
                    })
                    .await
            }
            _ => Err(malformed()),
        }
    }
    .await;
    let (response, code) = match result {
        Ok(body) => (json_response(StatusCode::OK, body.into()), "OK"),
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
/// send it slowly).
async fn read_body(engine: &Engine, body: Body) -> Result<Bytes, Status> {
    let limit = engine.max_body_bytes;
    let read = async {
        axum::body::to_bytes(body, limit).await.map_err(|e| {
            let too_big =
                std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| {
                    e.source()
                })
                .any(|e| e.is::<http_body_util::LengthLimitError>());
            if too_big {
                Status::new(
                    Code::ResourceExhausted,
                    format!("the request body is larger than the server's limit of {limit} bytes"),
                )
            } else {
                Status::invalid(format!("could not read the request body: {e}"))
            }
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

async fn predict(engine: &Arc<Engine>, t: &Target<'_>, body: Bytes) -> Result<String, Status> {
    engine.model.check_name(t.name)?;
    let servable = engine.model.get(t.version)?;
    let (key, format, inputs) = decode_predict(&servable, &body)?;
    let Some(batcher) = &engine.batcher else {
        let signature = key.clone();
        return engine
            .dispatch
            .run(rest_api("predict"), &signature, body.len(), move || {
                let outputs = servable.predict(&key, inputs, &[])?;
                codec::write_predict_response(format, &outputs)
            })
            .await;
    };
    let outputs = batcher.run(&servable, &key, inputs, &[]).await?;
    codec::write_predict_response(format, &outputs)
}

/// A predict request decoded: the signature's key (borrowed when it is the default one),
/// the format, the typed inputs by key.
type DecodedPredict = (Cow<'static, str>, Format, Vec<(String, Tensor)>);

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
                return Ok((DEFAULT_SIGNATURE.into(), format, vec![(k.clone(), t)]));
            }
        }
    }
    let request = codec::parse_predict(body)?;
    let (key, inputs) = typed_inputs(servable, &request)?;
    Ok((key.into(), request.format, inputs))
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
            let mut keys = sig.inputs.keys();
            match (keys.next(), keys.next()) {
                (Some(k), None) => vec![(k.clone(), typed(k, v)?)],
                _ => {
                    return Err(Status::invalid(format!(
                        "signature '{key}' has {} inputs ({}): name each input",
                        sig.inputs.len(),
                        sig.inputs.keys().cloned().collect::<Vec<_>>().join(", ")
                    )))
                }
            }
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
