//! `rustflow serve` driven as a real process over loopback: TensorFlow Serving's REST and
//! gRPC APIs, bad requests, concurrent clients, a version swap under load, shutdown.

use rustflow::proto::tf::serving as tfs;
use rustflow::proto::{tensor_from_proto, tensor_to_proto};
use rustflow::saved_model::{self, Signature, DEFAULT_SIGNATURE, SERVE_TAG};
use rustflow::{DType, Graph, Session, Tensor};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn tf_serving(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("graphs/tf_serving")
        .join(name)
}

fn tmp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rustflow-serve-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A running `rustflow serve`, its addresses and its stderr lines.
struct Server {
    child: Child,
    rest: String,
    grpc: Option<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(model: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rustflow"))
            .arg("serve")
            .arg(model)
            .args(["--port", "0", "--poll-interval", "0.05"])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line.clone());
                sink.lock().unwrap().push(line);
            }
        });
        let mut grpc = None;
        loop {
            let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not start");
            };
            if let Some(a) = line.strip_prefix("rustflow: gRPC API at ") {
                grpc = Some(a.to_string());
            }
            if let Some(a) = line.strip_prefix("rustflow: REST API at http://") {
                return Server {
                    child,
                    rest: a.to_string(),
                    grpc,
                    log,
                };
            }
        }
    }

    fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        http(&self.rest, method, path, body.as_bytes())
    }

    fn json(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let (status, text) = self.request(method, path, body);
        let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        (status, v)
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Waits for the process to exit; its exit code.
    fn wait(mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_contains(&self, s: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(s))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on a fresh connection: (status, body).
fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    read_response(&mut s)
}

fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    (status, body.to_string())
}

fn half_plus_two() -> PathBuf {
    tf_serving("saved_model_half_plus_two_cpu")
}

/// Fails unless `got` is a number list equal to `want`.
fn floats(got: &Value) -> Vec<f64> {
    fn walk(v: &Value, out: &mut Vec<f64>) {
        match v {
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            v => out.push(v.as_f64().unwrap()),
        }
    }
    let mut out = Vec::new();
    walk(got, &mut out);
    out
}

#[test]
fn rest_status_metadata_and_predict_as_tf_serving() {
    let s = Server::start(&half_plus_two(), &[]);
    let name = "saved_model_half_plus_two_cpu";
    let want_status = json!({"model_version_status": [{
        "version": "123", "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""}}]});
    for path in [
        format!("/v1/models/{name}"),
        format!("/v1/models/{name}/versions/123"),
        // Percent-encoded, as axum's routes decode it.
        "/v1/models/saved_model_half_plus_two%5Fcpu/versions/12%33".to_string(),
    ] {
        assert_eq!(s.json("GET", &path, ""), (200, want_status.clone()));
    }

    let (code, meta) = s.json("GET", &format!("/v1/models/{name}/metadata"), "");
    assert_eq!(code, 200);
    assert_eq!(
        meta["model_spec"],
        json!({"name": name, "signature_name": "", "version": "123"})
    );
    let sigs = &meta["metadata"]["signature_def"]["signature_def"];
    assert_eq!(
        sigs["serving_default"]["inputs"]["x"],
        json!({"dtype": "DT_FLOAT", "name": "x:0", "tensor_shape": {
            "dim": [{"size": "-1", "name": ""}, {"size": "1", "name": ""}], "unknown_rank": false}})
    );
    assert_eq!(
        sigs["serving_default"]["method_name"],
        "tensorflow/serving/predict"
    );
    assert_eq!(
        sigs["classify_x_to_y"]["inputs"]["inputs"]["dtype"],
        "DT_STRING"
    );
    let (_, meta123) = s.json(
        "GET",
        &format!("/v1/models/{name}/versions/123/metadata"),
        "",
    );
    assert_eq!(meta123, meta);

    // Row format: one input, answered with a list of rows.
    let predict = format!("/v1/models/{name}:predict");
    let (code, v) = s.json("POST", &predict, r#"{"instances": [[1.0], [2.0], [5.0]]}"#);
    assert_eq!(
        (code, &v),
        (200, &json!({"predictions": [[2.5], [3.0], [4.5]]}))
    );
    // Named row format, and a version in the path.
    let (code, v) = s.json(
        "POST",
        &format!("/v1/models/{name}/versions/123:predict"),
        r#"{"signature_name": "serving_default", "instances": [{"x": [1]}, {"x": [3]}]}"#,
    );
    assert_eq!((code, floats(&v["predictions"])), (200, vec![2.5, 3.5]));
    // Columnar: a bare value, and an object by input key; another signature.
    let (code, v) = s.json("POST", &predict, r#"{"inputs": [[1.0], [2.0]]}"#);
    assert_eq!((code, &v), (200, &json!({"outputs": [[2.5], [3.0]]})));
    let (code, v) = s.json(
        "POST",
        &predict,
        r#"{"signature_name": "regress_x2_to_y3", "inputs": {"inputs": [[1.0], [5.0]]}}"#,
    );
    assert_eq!((code, floats(&v["outputs"])), (200, vec![3.5, 5.5]));

    // classify and regress: tf.Examples as JSON, parsed by the graph's ParseExample.
    let (code, v) = s.json(
        "POST",
        &format!("/v1/models/{name}:regress"),
        r#"{"signature_name": "regress_x_to_y", "examples": [{"x": 1.0}, {"x": [2.0]}, {"x": 5.0}]}"#,
    );
    assert_eq!((code, &v), (200, &json!({"result": [2.5, 3.0, 4.5]})));
    let (code, v) = s.json(
        "POST",
        &format!("/v1/models/{name}:classify"),
        r#"{"signature_name": "classify_x_to_y", "context": {"x": 1.0}, "examples": [{}, {"x": 5.0}]}"#,
    );
    assert_eq!(
        (code, &v),
        (200, &json!({"result": [[["", 2.5]], [["", 4.5]]]}))
    );

    // Metrics count what was asked.
    let (code, text) = s.request("GET", "/monitoring/prometheus/metrics", "");
    assert_eq!(code, 200);
    assert!(
        text.contains(&format!(
            ":tensorflow:serving:request_count{{model_name=\"{name}\",entrypoint=\"REST\",API=\"predict\",status=\"OK\"}} 4"
        )),
        "{text}"
    );
    assert!(text.contains(":tensorflow:serving:request_latency_bucket{"));
    // One access-log line per request.
    std::thread::sleep(Duration::from_millis(100));
    assert!(s.log_contains(&format!("POST /v1/models/{name}:predict 200 ")));
    assert!(s.log_contains(&format!("GET /v1/models/{name}/metadata 200 ")));
}

#[test]
fn bad_requests_get_tf_serving_errors_and_the_server_keeps_serving() {
    let s = Server::start(&half_plus_two(), &["--max-body-bytes", "100000"]);
    let m = "/v1/models/saved_model_half_plus_two_cpu";
    let predict = format!("{m}:predict");
    let deep = format!("{{\"inputs\": {}1{}}}", "[".repeat(5000), "]".repeat(5000));
    let huge = format!("{{\"inputs\": [{}1]}}", "1, ".repeat(100_000));
    let cases: Vec<(&str, String, String, u16, &str)> = vec![
        (
            "GET",
            "/v1/models/nope".into(),
            "".into(),
            404,
            "Could not find any versions of model nope",
        ),
        (
            "GET",
            format!("{m}/versions/7"),
            "".into(),
            404,
            "Could not find version 7",
        ),
        (
            "GET",
            format!("{m}/versions/7/metadata"),
            "".into(),
            404,
            "Servable not found",
        ),
        (
            "POST",
            "/v1/models/nope:predict".into(),
            "{}".into(),
            404,
            "model nope",
        ),
        (
            "POST",
            format!("{m}/versions/9:predict"),
            r#"{"inputs": [[1.0]]}"#.into(),
            404,
            "Servable not found",
        ),
        (
            "GET",
            format!("{m}/versions/x"),
            "".into(),
            400,
            "Malformed request",
        ),
        (
            "POST",
            format!("{m}:explode"),
            "{}".into(),
            400,
            "Malformed request",
        ),
        ("GET", predict.clone(), "".into(), 400, "Malformed request"),
        // Percent-encoded bytes that are not UTF-8.
        (
            "GET",
            "/v1/models/m%FF".into(),
            "".into(),
            400,
            "Malformed request",
        ),
        ("POST", predict.clone(), "{".into(), 400, "JSON parse error"),
        ("POST", predict.clone(), deep, 400, "recursion limit"),
        (
            "POST",
            predict.clone(),
            huge,
            // RESOURCE_EXHAUSTED, which TensorFlow Serving's REST API answers with 429.
            429,
            "larger than the server's limit of 100000 bytes",
        ),
        (
            "POST",
            predict.clone(),
            r#"{"instances": [["a"]]}"#.into(),
            400,
            "must be float32 (numbers), got \"a\"",
        ),
        (
            "POST",
            predict.clone(),
            r#"{"instances": [[1.0, 2.0]]}"#.into(),
            400,
            "must have shape [?,1]",
        ),
        (
            "POST",
            predict.clone(),
            r#"{"instances": [[true]]}"#.into(),
            400,
            "must be float32",
        ),
        (
            "POST",
            predict.clone(),
            r#"{"inputs": {"z": [[1.0]]}}"#.into(),
            400,
            "has no input 'z'",
        ),
        (
            "POST",
            predict.clone(),
            r#"{"signature_name": "nope", "inputs": [[1.0]]}"#.into(),
            400,
            "Serving signature name: \"nope\" not found",
        ),
        (
            "POST",
            predict.clone(),
            r#"{"signature_name": "classify_x_to_y", "inputs": [{"b64": "aGk="}]}"#.into(),
            400,
            "(op ParseExample) failed",
        ),
        (
            "POST",
            format!("{m}:classify"),
            r#"{"examples": [{"x": 1.0}]}"#.into(),
            400,
            "Expected tensorflow/serving/classify signature method_name",
        ),
        (
            "POST",
            format!("{m}:regress"),
            r#"{"signature_name": "regress_x_to_y", "examples": [{"y": 1.0}]}"#.into(),
            400,
            "feature 'x': missing",
        ),
        (
            "POST",
            format!("{m}:regress"),
            r#"{"signature_name": "regress_x_to_y", "examples": [{"x": [1.0, "a"]}]}"#.into(),
            400,
            "feature 'x'",
        ),
        (
            "GET",
            "/elsewhere".into(),
            "".into(),
            404,
            "no such endpoint",
        ),
    ];
    for (method, path, body, want_code, want) in &cases {
        let (code, v) = s.json(method, path, body);
        let e = v["error"].as_str().unwrap_or_else(|| panic!("{path}: {v}"));
        assert_eq!(code, *want_code, "{method} {path}: {e}");
        assert!(e.contains(want), "{method} {path}: {e} (want {want})");
    }
    // A client that goes away in the middle of its body.
    let mut c = TcpStream::connect(&s.rest).unwrap();
    write!(
        c,
        "POST {predict} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{\"inst"
    )
    .unwrap();
    drop(c);
    // Still serving, same answers.
    let (code, v) = s.json("POST", &predict, r#"{"instances": [[1.0]]}"#);
    assert_eq!((code, v), (200, json!({"predictions": [[2.5]]})));
}

#[test]
fn concurrent_clients_get_their_own_answers() {
    let s = Arc::new(Server::start(&half_plus_two(), &["--quiet"]));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let x = (t * 100 + i) as f64;
                    let (code, v) = s.json(
                        "POST",
                        "/v1/models/saved_model_half_plus_two_cpu:predict",
                        &format!("{{\"instances\": [[{x}], [{}]]}}", x + 1.0),
                    );
                    assert_eq!(code, 200, "{v}");
                    assert_eq!(
                        floats(&v["predictions"]),
                        [x / 2.0 + 2.0, (x + 1.0) / 2.0 + 2.0]
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn a_newer_version_is_swapped_in_under_load_and_a_broken_one_reported() {
    let base = tmp("versions");
    copy_dir(&half_plus_two().join("00000123"), &base.join("1"));
    let s = Arc::new(Server::start(&base, &["--quiet", "--name", "hp"]));
    let stop = Arc::new(AtomicBool::new(false));
    let (old, new) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (s, stop, old, new) = (s.clone(), stop.clone(), old.clone(), new.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let (code, v) =
                        s.json("POST", "/v1/models/hp:predict", r#"{"instances": [[1.0]]}"#);
                    assert_eq!(code, 200, "a request failed during the swap: {v}");
                    match floats(&v["predictions"])[0] {
                        2.5 => old.fetch_add(1, Ordering::Relaxed),
                        3.5 => new.fetch_add(1, Ordering::Relaxed),
                        y => panic!("unexpected prediction {y}"),
                    };
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // Version 2 (half plus three) appears atomically, as a deployment would write it.
    copy_dir(
        &tf_serving("saved_model_half_plus_three").join("00000123"),
        &base.join("staging"),
    );
    std::fs::rename(base.join("staging"), base.join("2")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while new.load(Ordering::Relaxed) < 50 {
        assert!(Instant::now() < deadline, "version 2 was never served");
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    assert!(old.load(Ordering::Relaxed) > 0);

    // A broken version 3 is reported; version 2 keeps serving.
    std::fs::create_dir_all(base.join("3")).unwrap();
    std::fs::write(base.join("3/saved_model.pb"), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let (code, v) = s.json("GET", "/v1/models/hp", "");
        assert_eq!(code, 200);
        if v["model_version_status"].as_array().unwrap().len() == 3 {
            break v;
        }
        assert!(Instant::now() < deadline, "version 3 was never tried: {v}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let versions = status["model_version_status"].as_array().unwrap();
    assert_eq!(versions[0]["version"], "3");
    assert_eq!(versions[0]["state"], "END");
    assert_eq!(versions[0]["status"]["error_code"], "UNKNOWN");
    assert!(versions[0]["status"]["error_message"]
        .as_str()
        .unwrap()
        .contains("no MetaGraphDef"));
    assert_eq!(versions[1]["version"], "2");
    assert_eq!(versions[1]["state"], "AVAILABLE");
    assert_eq!(versions[2]["state"], "END");
    let (_, v) = s.json("POST", "/v1/models/hp:predict", r#"{"instances": [[1.0]]}"#);
    assert_eq!(floats(&v["predictions"]), [3.5]);
    assert!(s.log_contains("version 3 failed to load"));
    assert!(s.log_contains("version 2 keeps serving"));
    drop(s);
    std::fs::remove_dir_all(base).unwrap();
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_then_exits_0() {
    let s = Server::start(&half_plus_two(), &[]);
    let body = br#"{"instances": [[1.0]]}"#;
    let mut c = TcpStream::connect(&s.rest).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        c,
        "POST /v1/models/saved_model_half_plus_two_cpu:predict HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    c.write_all(&body[..5]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.signal("-TERM");
    std::thread::sleep(Duration::from_millis(200));
    c.write_all(&body[5..]).unwrap();
    let (code, text) = read_response(&mut c);
    assert_eq!((code, text.as_str()), (200, r#"{"predictions": [[2.5]]}"#));
    let log = s.log.clone();
    assert_eq!(s.wait(), Some(0));
    assert!(log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("shutting down")));
}

#[test]
fn sigint_stops_an_idle_server() {
    let s = Server::start(&half_plus_two(), &[]);
    // The load benchmark's fixed-body route is there only when asked for.
    assert_eq!(http(&s.rest, "GET", "/reference", b"").0, 404);
    // Its REST threads share their port among themselves only: a second server on it is
    // refused.
    let port = s.rest.rsplit(':').next().unwrap();
    let second = Command::new(env!("CARGO_BIN_EXE_rustflow"))
        .arg("serve")
        .arg(half_plus_two())
        .args(["--port", port])
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("cannot listen on"), "{err}");
    s.signal("-INT");
    assert_eq!(s.wait(), Some(0));
    let s = Server::start(&half_plus_two(), &["--reference-route"]);
    assert_eq!(
        http(&s.rest, "GET", "/reference", b""),
        (200, r#"{"ok": true}"#.to_string())
    );
    // As long as asked (another route's answer), still one JSON object.
    for n in [23, 150, 4000] {
        let (code, body) = http(&s.rest, "GET", &format!("/reference?bytes={n}"), b"");
        assert_eq!((code, body.len()), (200, n), "{body}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["ok"], true);
    }
    s.signal("-INT");
    assert_eq!(s.wait(), Some(0));
}

/// The digits MLP (64 → 128 ReLU → 10 softmax) with fixed weights, saved by rustflow.
/// A tokio runtime and a `PredictionService` client connected to a server's gRPC address.
fn grpc_client(
    s: &Server,
) -> (
    tokio::runtime::Runtime,
    tfs::prediction_service_client::PredictionServiceClient<tonic::transport::Channel>,
) {
    let grpc = format!(
        "http://{}",
        s.grpc.clone().expect("no gRPC address printed")
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let channel = rt.block_on(async {
        tonic::transport::Endpoint::from_shared(grpc)
            .unwrap()
            .connect()
            .await
            .unwrap()
    });
    let client = tfs::prediction_service_client::PredictionServiceClient::new(channel);
    (rt, client)
}

/// A model whose output `y` is a float32 `Fill` of ones with the requested `dims`.
fn fill_model(dir: &Path) {
    let mut g = Graph::new();
    let dims = g.placeholder(DType::Int64, [None], "dims").unwrap();
    let one = g.constant(1f32).unwrap();
    let y = g.fill(dims, one).unwrap();
    save_predict_model(&g, dir, &[("dims", dims)], &[("y", y)]);
}

/// Saves `g` as a SavedModel whose `serving_default` maps these inputs to these outputs.
fn save_predict_model(
    g: &Graph,
    dir: &Path,
    inputs: &[(&str, rustflow::Output)],
    outputs: &[(&str, rustflow::Output)],
) {
    let sig = Signature::predict(g, inputs, outputs);
    saved_model::save(
        &Session::new(g),
        g,
        dir,
        &[SERVE_TAG],
        &BTreeMap::from([(DEFAULT_SIGNATURE.to_string(), sig)]),
    )
    .unwrap();
}

#[test]
fn a_request_over_the_memory_limit_is_refused_and_the_server_keeps_serving() {
    let dir = tmp("fill");
    fill_model(&dir.join("fill").join("1"));
    let s = Server::start(
        &dir.join("fill"),
        &["--grpc-port", "0", "--max-memory", "1M"],
    );
    let predict = |dims: u64| {
        let body = json!({"inputs": {"dims": [dims]}}).to_string();
        s.json("POST", "/v1/models/fill:predict", &body)
    };
    let (code, v) = predict(3);
    assert_eq!((code, floats(&v["outputs"])), (200, vec![1.0; 3]), "{v}");
    // 4 TiB (more than the machine has), then 4 MB (over --max-memory 1M): refused as
    // RESOURCE_EXHAUSTED (HTTP 429, as TensorFlow Serving maps it), naming the node.
    for (dims, bytes) in [
        (1u64 << 40, "4398046511104 bytes"),
        (1 << 20, "4194304 bytes"),
    ] {
        let (code, v) = predict(dims);
        let msg = v["error"].as_str().unwrap_or_default();
        assert_eq!(code, 429, "{v}");
        assert!(
            msg.contains("'Fill'") && msg.contains(bytes) && msg.contains("limit of 1048576"),
            "{msg}"
        );
    }
    let (code, v) = predict(2);
    assert_eq!((code, floats(&v["outputs"])), (200, vec![1.0; 2]), "{v}");

    let (rt, mut client) = grpc_client(&s);
    rt.block_on(async {
        let request = |dims: i64| tfs::PredictRequest {
            model_spec: Some(tfs::ModelSpec {
                name: "fill".to_string(),
                ..Default::default()
            }),
            inputs: [("dims".to_string(), tensor_to_proto(&Tensor::from([dims])))].into(),
            ..Default::default()
        };
        let e = client.predict(request(1 << 40)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
        assert!(e.message().contains("'Fill'"), "{}", e.message());
        let r = client.predict(request(4)).await.unwrap().into_inner();
        assert_eq!(
            tensor_from_proto(&r.outputs["y"]).unwrap(),
            Tensor::full(&[4], 1f32)
        );
    });
    drop(s);
    std::fs::remove_dir_all(dir).unwrap();
}

fn digits_model(dir: &Path) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let w1: Vec<f32> = (0..64 * 128)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 500.0)
        .collect();
    let b1: Vec<f32> = (0..128).map(|i| (i % 7) as f32 / 100.0).collect();
    let w2: Vec<f32> = (0..128 * 10)
        .map(|i| ((i * 53 % 97) as f32 - 48.0) / 300.0)
        .collect();
    let b2: Vec<f32> = (0..10).map(|i| i as f32 / 50.0).collect();
    let mut g = Graph::new();
    let x = g
        .placeholder(DType::Float32, [None, Some(64)], "x")
        .unwrap();
    let c = |g: &mut Graph, shape: &[usize], v: &[f32]| {
        g.constant(Tensor::new(shape, v.to_vec()).unwrap()).unwrap()
    };
    let (cw1, cb1) = (c(&mut g, &[64, 128], &w1), c(&mut g, &[128], &b1));
    let (cw2, cb2) = (c(&mut g, &[128, 10], &w2), c(&mut g, &[10], &b2));
    let h = g.matmul(x, cw1).unwrap();
    let h = g.add(h, cb1).unwrap();
    let h = g.relu(h).unwrap();
    let z = g.matmul(h, cw2).unwrap();
    let z = g.add(z, cb2).unwrap();
    let probs = g.softmax(z).unwrap();
    save_predict_model(&g, dir, &[("x", x)], &[("probs", probs)]);
    (w1, b1, w2, b2)
}

/// softmax(relu(x·w1 + b1)·w2 + b2), computed directly.
fn digits_reference(
    x: &[f32],
    (w1, b1, w2, b2): &(Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>),
) -> Vec<f64> {
    let h: Vec<f64> = (0..128)
        .map(|j| {
            let s: f64 = (0..64)
                .map(|i| x[i] as f64 * w1[i * 128 + j] as f64)
                .sum::<f64>()
                + b1[j] as f64;
            s.max(0.0)
        })
        .collect();
    let z: Vec<f64> = (0..10)
        .map(|k| (0..128).map(|j| h[j] * w2[j * 10 + k] as f64).sum::<f64>() + b2[k] as f64)
        .collect();
    let m = z.iter().cloned().fold(f64::MIN, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

#[test]
fn grpc_predict_metadata_and_status_on_the_digits_model() {
    let dir = tmp("digits");
    let model_dir = dir.join("digits").join("1");
    let weights = digits_model(&model_dir);
    let s = Server::start(&dir.join("digits"), &["--grpc-port", "0"]);
    let grpc = format!(
        "http://{}",
        s.grpc.clone().expect("no gRPC address printed")
    );
    let x: Vec<f32> = (0..64).map(|i| (i % 17) as f32 / 16.0).collect();
    let want = digits_reference(&x, &weights);

    // REST first: the same model answers the same.
    let body = json!({"instances": [x.clone()]}).to_string();
    let (code, v) = s.json("POST", "/v1/models/digits:predict", &body);
    assert_eq!(code, 200, "{v}");
    for (a, b) in floats(&v["predictions"]).iter().zip(&want) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(grpc)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut predict =
            tfs::prediction_service_client::PredictionServiceClient::new(channel.clone());
        let spec = |name: &str| {
            Some(tfs::ModelSpec {
                name: name.to_string(),
                ..Default::default()
            })
        };
        let input = Tensor::new(&[1, 64], x.clone()).unwrap();
        let r = predict
            .predict(tfs::PredictRequest {
                model_spec: spec("digits"),
                inputs: [("x".to_string(), tensor_to_proto(&input))].into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let probs = tensor_from_proto(&r.outputs["probs"]).unwrap();
        assert_eq!(probs.shape(), &[1, 10]);
        for (a, b) in probs.as_slice::<f32>().unwrap().iter().zip(&want) {
            assert!((*a as f64 - b).abs() < 1e-5, "{a} vs {b}");
        }
        let rs = r.model_spec.unwrap();
        assert_eq!(
            (rs.name.as_str(), rs.signature_name.as_str()),
            ("digits", "serving_default")
        );

        let e = predict
            .predict(tfs::PredictRequest {
                model_spec: spec("other"),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound);
        let e = predict
            .predict(tfs::PredictRequest {
                model_spec: spec("digits"),
                inputs: [(
                    "x".to_string(),
                    tensor_to_proto(&Tensor::new(&[1, 3], vec![1.0f32; 3]).unwrap()),
                )]
                .into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("must have shape"), "{}", e.message());

        let meta = predict
            .get_model_metadata(tfs::GetModelMetadataRequest {
                model_spec: spec("digits"),
                metadata_field: vec!["signature_def".into()],
            })
            .await
            .unwrap()
            .into_inner();
        let any = &meta.metadata["signature_def"];
        assert_eq!(
            any.type_url,
            "type.googleapis.com/tensorflow.serving.SignatureDefMap"
        );
        use prost::Message;
        let map = tfs::SignatureDefMap::decode(any.value.as_slice()).unwrap();
        assert_eq!(map.signature_def["serving_default"].inputs["x"].dtype, 1);

        let mut models = tfs::model_service_client::ModelServiceClient::new(channel);
        let st = models
            .get_model_status(tfs::GetModelStatusRequest {
                model_spec: spec("digits"),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(st.model_version_status.len(), 1);
        assert_eq!(st.model_version_status[0].version, 1);
        assert_eq!(
            st.model_version_status[0].state,
            tfs::model_version_status::State::Available as i32
        );
    });
    drop(s);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A `tf.Example` with one float feature `x`.
fn example_x(x: &[f32]) -> rustflow::proto::tf::Example {
    use rustflow::proto::tf;
    let feature = tf::Feature {
        kind: Some(tf::feature::Kind::FloatList(tf::FloatList {
            value: x.to_vec(),
        })),
    };
    tf::Example {
        features: Some(tf::Features {
            feature: [("x".to_string(), feature)].into(),
        }),
    }
}

#[test]
fn grpc_classify_and_regress_on_half_plus_two() {
    let s = Server::start(&half_plus_two(), &["--grpc-port", "0", "--name", "hp2"]);
    let (rt, mut client) = grpc_client(&s);
    rt.block_on(async {
        let spec = |signature: &str| {
            Some(tfs::ModelSpec {
                name: "hp2".to_string(),
                signature_name: signature.to_string(),
                ..Default::default()
            })
        };
        let list = |xs: &[&[f32]]| {
            Some(tfs::Input {
                kind: Some(tfs::input::Kind::ExampleList(tfs::ExampleList {
                    examples: xs.iter().map(|x| example_x(x)).collect(),
                })),
            })
        };
        // y = x / 2 + 2 for each example.
        let r = client
            .regress(tfs::RegressionRequest {
                model_spec: spec("regress_x_to_y"),
                input: list(&[&[1.0], &[2.0], &[5.0]]),
            })
            .await
            .unwrap()
            .into_inner();
        let values: Vec<f32> = r
            .result
            .unwrap()
            .regressions
            .iter()
            .map(|r| r.value)
            .collect();
        assert_eq!(values, [2.5, 3.0, 4.5]);
        let rs = r.model_spec.unwrap();
        assert_eq!(
            (rs.name.as_str(), rs.signature_name.as_str()),
            ("hp2", "regress_x_to_y")
        );
        assert_eq!(
            rs.version_choice,
            Some(tfs::model_spec::VersionChoice::Version(
                rustflow::proto::google::protobuf::Int64Value { value: 123 }
            ))
        );

        // The context's features go into every example that lacks them.
        let r = client
            .classify(tfs::ClassificationRequest {
                model_spec: spec("classify_x_to_y"),
                input: Some(tfs::Input {
                    kind: Some(tfs::input::Kind::ExampleListWithContext(
                        tfs::ExampleListWithContext {
                            examples: vec![
                                rustflow::proto::tf::Example::default(),
                                example_x(&[5.0]),
                            ],
                            context: Some(example_x(&[1.0])),
                        },
                    )),
                }),
            })
            .await
            .unwrap()
            .into_inner();
        let got: Vec<Vec<(String, f32)>> = r
            .result
            .unwrap()
            .classifications
            .into_iter()
            .map(|c| c.classes.into_iter().map(|c| (c.label, c.score)).collect())
            .collect();
        assert_eq!(got, [[(String::new(), 2.5)], [(String::new(), 4.5)]]);

        // Errors as TensorFlow Serving gives them.
        let e = client
            .regress(tfs::RegressionRequest {
                model_spec: spec("regress_x_to_y"),
                input: None,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("Input is empty"), "{}", e.message());
        let e = client
            .classify(tfs::ClassificationRequest {
                model_spec: spec("regress_x_to_y"),
                input: list(&[&[1.0]]),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(
            e.message().contains("Expected tensorflow/serving/classify"),
            "{}",
            e.message()
        );
        let e = client
            .regress(tfs::RegressionRequest {
                model_spec: spec("nope"),
                input: list(&[&[1.0]]),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        // Two values where one is expected: the graph's ParseExample says so.
        let e = client
            .regress(tfs::RegressionRequest {
                model_spec: spec("regress_x_to_y"),
                input: list(&[&[1.0, 2.0]]),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    });
    // The server still answers.
    let (code, v) = s.json(
        "POST",
        "/v1/models/hp2:regress",
        r#"{"signature_name": "regress_x_to_y", "examples": [{"x": 3.0}]}"#,
    );
    assert_eq!((code, &v), (200, &json!({"result": [3.5]})));
}

#[test]
fn grpc_multi_inference_runs_several_tasks_over_one_input() {
    let s = Server::start(&half_plus_two(), &["--grpc-port", "0", "--name", "hp2"]);
    let (rt, client) = grpc_client(&s);
    let input = Some(tfs::Input {
        kind: Some(tfs::input::Kind::ExampleList(tfs::ExampleList {
            examples: vec![example_x(&[1.0]), example_x(&[5.0])],
        })),
    });
    let task = |name: &str, signature: &str, method: &str| tfs::InferenceTask {
        model_spec: Some(tfs::ModelSpec {
            name: name.to_string(),
            signature_name: signature.to_string(),
            ..Default::default()
        }),
        method_name: format!("tensorflow/serving/{method}"),
    };
    rt.block_on(async {
        let call = |tasks: Vec<tfs::InferenceTask>| {
            let request = tfs::MultiInferenceRequest {
                tasks,
                input: input.clone(),
            };
            let mut client = client.clone();
            async move { client.multi_inference(request).await }
        };
        let r = call(vec![
            task("hp2", "regress_x_to_y", "regress"),
            task("hp2", "classify_x_to_y", "classify"),
            task("hp2", "regress_x_to_y2", "regress"),
        ])
        .await
        .unwrap()
        .into_inner();
        use tfs::inference_result::Result as R;
        let got: Vec<(String, Vec<f32>)> = r
            .results
            .into_iter()
            .map(|res| {
                let spec = res.model_spec.unwrap();
                assert_eq!(spec.name, "hp2");
                let values = match res.result.unwrap() {
                    R::RegressionResult(r) => r.regressions.iter().map(|r| r.value).collect(),
                    R::ClassificationResult(c) => c
                        .classifications
                        .iter()
                        .flat_map(|c| c.classes.iter().map(|c| c.score))
                        .collect(),
                };
                (spec.signature_name, values)
            })
            .collect();
        // y = x / 2 + 2 (regress and classify), y2 = x / 2 + 3.
        assert_eq!(
            got,
            [
                ("regress_x_to_y".to_string(), vec![2.5, 4.5]),
                ("classify_x_to_y".to_string(), vec![2.5, 4.5]),
                ("regress_x_to_y2".to_string(), vec![3.5, 5.5]),
            ]
        );
        // Errors as TensorFlow Serving gives them.
        let cases = [
            (vec![], tonic::Code::InvalidArgument, "at least one task"),
            (
                vec![
                    task("hp2", "regress_x_to_y", "regress"),
                    task("hp2", "regress_x_to_y", "regress"),
                ],
                tonic::Code::InvalidArgument,
                "Duplicate evaluation of signature: regress_x_to_y",
            ),
            (
                vec![
                    task("hp2", "regress_x_to_y", "regress"),
                    task("other", "classify_x_to_y", "classify"),
                ],
                tonic::Code::InvalidArgument,
                "same model name",
            ),
            (
                vec![task("hp2", "serving_default", "predict")],
                tonic::Code::Unimplemented,
                "Unsupported signature method_name: tensorflow/serving/predict",
            ),
            (
                vec![task("hp2", "regress_x_to_y", "classify")],
                tonic::Code::InvalidArgument,
                "Expected tensorflow/serving/classify",
            ),
            (
                vec![task("nope", "regress_x_to_y", "regress")],
                tonic::Code::NotFound,
                "nope",
            ),
        ];
        for (tasks, code, want) in cases {
            let e = call(tasks).await.unwrap_err();
            assert_eq!(e.code(), code, "{e:?}");
            assert!(e.message().contains(want), "{} (want {want})", e.message());
        }
    });
}

/// A request whose body is sent in `chunks` (chunked transfer encoding), each written
/// apart so that the server reads them as separate frames.
fn http_chunked(addr: &str, path: &str, chunks: &[&[u8]]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_nodelay(true).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    for c in chunks {
        write!(s, "{:x}\r\n", c.len()).unwrap();
        s.write_all(c).unwrap();
        s.write_all(b"\r\n").unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    s.write_all(b"0\r\n\r\n").unwrap();
    read_response(&mut s)
}

#[test]
fn bodies_in_several_frames_are_joined_and_held_to_the_limit() {
    let s = Server::start(
        &half_plus_two(),
        &["--name", "hp2", "--quiet", "--max-body-bytes", "40"],
    );
    let predict = "/v1/models/hp2:predict";
    // Plain numbers (the fast reader) and the JSON tree, each in three frames.
    for body in [
        r#"{"instances": [1.0, 5.0]}"#,
        r#"{"inputs": {"x": [1.0, 5.0]}}"#,
    ] {
        let (a, rest) = body.split_at(5);
        let (b, c) = rest.split_at(9);
        let (code, text) = http_chunked(
            &s.rest,
            predict,
            &[a.as_bytes(), b.as_bytes(), c.as_bytes()],
        );
        assert_eq!(code, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let answer = v.get("predictions").or(v.get("outputs")).unwrap();
        assert_eq!(floats(answer), [2.5, 4.5], "{body}");
    }
    // 41 bytes in two frames, each under the limit: RESOURCE_EXHAUSTED (429).
    let long = r#"{"instances": [1.0, 5.0, 1.0, 5.0, 1.00]}"#;
    assert_eq!(long.len(), 41);
    let (first, second) = long.split_at(30);
    let (code, text) = http_chunked(&s.rest, predict, &[first.as_bytes(), second.as_bytes()]);
    assert_eq!(code, 429, "{text}");
    assert!(
        text.contains("larger than the server's limit of 40 bytes"),
        "{text}"
    );
}

#[test]
fn instances_of_scalars_take_the_signature_shape() {
    let s = Server::start(&half_plus_two(), &["--name", "hp2", "--quiet"]);
    let predict = "/v1/models/hp2:predict";
    // x is [-1, 1]: a list of scalars is a column, as TensorFlow Serving reads it.
    let (code, v) = s.json("POST", predict, r#"{"instances": [1.0, 2.0, 5.0]}"#);
    assert_eq!(
        (code, &v),
        (200, &json!({"predictions": [[2.5], [3.0], [4.5]]}))
    );
    let (code, v) = s.json(
        "POST",
        predict,
        r#"{"instances": [{"x": 1.0}, {"x": 5.0}]}"#,
    );
    assert_eq!((code, &v), (200, &json!({"predictions": [[2.5], [4.5]]})));
    let (code, v) = s.json("POST", predict, r#"{"inputs": {"x": [1.0, 2.0]}}"#);
    assert_eq!((code, &v), (200, &json!({"outputs": [[2.5], [3.0]]})));
    // Rows of two values do not fit [-1, 1]: refused as before.
    let (code, v) = s.json("POST", predict, r#"{"instances": [[1.0, 2.0]]}"#);
    assert_eq!(code, 400, "{v}");
}

#[test]
fn batching_merges_concurrent_requests_and_each_gets_its_own_rows() {
    let s = Arc::new(Server::start(
        &half_plus_two(),
        &[
            "--name",
            "hp2",
            "--quiet",
            "--batching",
            "--max-batch-size",
            "6",
            "--batch-timeout-micros",
            "50000",
        ],
    ));
    let threads: Vec<_> = (0..10)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    // Threads send one, two, or (the last two) four rows: four and four
                    // overflow a batch of six, as do five and two.
                    let n = if t >= 8 { 4 } else { 1 + t % 2 };
                    let xs: Vec<f64> = (0..n).map(|r| (t * 100 + i * 2 + r) as f64).collect();
                    let body = json!({ "instances": xs.iter().map(|x| [x]).collect::<Vec<_>>() });
                    let (code, v) = s.json("POST", "/v1/models/hp2:predict", &body.to_string());
                    assert_eq!(code, 200, "{v}");
                    let want: Vec<f64> = xs.iter().map(|x| x / 2.0 + 2.0).collect();
                    assert_eq!(floats(&v["predictions"]), want);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Several requests shared runs.
    let (_, text) = s.request("GET", "/monitoring/prometheus/metrics", "");
    let counter = |name: &str| -> u64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{")))
            .unwrap_or_else(|| panic!("no {name} in {text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let (runs, requests) = (
        counter("rustflow_batched_runs"),
        counter("rustflow_batched_requests"),
    );
    // Merged runs happened, each answering two requests or more, and none held more than
    // --max-batch-size rows.
    assert!(runs >= 1, "{runs} merged runs for {requests} requests");
    assert!(
        requests >= 2 * runs && requests <= 100,
        "{runs} runs, {requests} requests"
    );
    let largest = counter("rustflow_batch_rows_max");
    assert!((2..=6).contains(&largest), "a batch of {largest} rows");
    // A request of more rows than a batch holds runs alone, whole.
    let xs: Vec<f64> = (0..9).map(f64::from).collect();
    let body = json!({ "instances": xs.iter().map(|x| [x]).collect::<Vec<_>>() });
    let (code, v) = s.json("POST", "/v1/models/hp2:predict", &body.to_string());
    assert_eq!(code, 200, "{v}");
    let want: Vec<f64> = xs.iter().map(|x| x / 2.0 + 2.0).collect();
    assert_eq!(floats(&v["predictions"]), want);
    // A request the batcher cannot merge (a scalar) goes straight to the run, which
    // refuses its shape as without batching.
    let (code, v) = s.json(
        "POST",
        "/v1/models/hp2:predict",
        r#"{"inputs": {"x": 3.0}}"#,
    );
    assert_eq!(code, 400, "{v}");
}

/// A counter's value in a Prometheus text page: the line that starts with `series`.
fn metric(page: &str, series: &str) -> u64 {
    let line = page
        .lines()
        .find(|l| l.starts_with(series))
        .unwrap_or_else(|| panic!("no {series} in {page}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn short_runs_go_inline_once_measured_and_the_flag_sends_all_to_the_blocking_pool() {
    let x: Vec<f32> = vec![1.0, 2.0, 3.0];
    for (flag, inline) in [("1000000", true), ("0", false)] {
        // One REST thread and one gRPC worker: each thread keeps its own estimates, so
        // each thread's first run of an API is measured on the blocking pool.
        let s = Server::start(
            &half_plus_two(),
            &[
                "--quiet",
                "--name",
                "hp2",
                "--grpc-port",
                "0",
                "--threads",
                "1",
                "--inline-run-micros",
                flag,
            ],
        );
        for i in 0..10 {
            let body = json!({ "instances": [[i as f32]] }).to_string();
            let (code, v) = s.json("POST", "/v1/models/hp2:predict", &body);
            assert_eq!(code, 200, "{v}");
            assert_eq!(floats(&v["predictions"]), [i as f64 / 2.0 + 2.0]);
        }
        let (rt, mut client) = grpc_client(&s);
        for _ in 0..10 {
            let input = Tensor::new(&[3, 1], x.clone()).unwrap();
            let r = rt
                .block_on(client.predict(tfs::PredictRequest {
                    model_spec: Some(tfs::ModelSpec {
                        name: "hp2".to_string(),
                        ..Default::default()
                    }),
                    inputs: [("x".to_string(), tensor_to_proto(&input))].into(),
                    ..Default::default()
                }))
                .unwrap()
                .into_inner();
            let y = tensor_from_proto(&r.outputs["y"]).unwrap();
            assert_eq!(y.as_slice::<f32>().unwrap(), [2.5, 3.0, 3.5]);
        }
        let (_, page) = s.request("GET", "/monitoring/prometheus/metrics", "");
        let runs = |place: &str| {
            metric(
                &page,
                &format!("rustflow_runs{{model_name=\"hp2\",place=\"{place}\"}}"),
            )
        };
        if inline {
            // Each API's first run (REST and gRPC are measured apart, on their threads)
            // goes to the blocking pool; the rest, measured far under a second, inline.
            assert_eq!((runs("inline"), runs("blocking")), (18, 2), "{page}");
        } else {
            assert_eq!((runs("inline"), runs("blocking")), (0, 20), "{page}");
        }
    }
}
