//! Event files written by `summary::FileWriter`, read back record by record (every checksum
//! checked), and summaries compared byte for byte with those TensorFlow 2.21's own summary
//! kernels wrote (`graphs/make_summary_fixtures.py`).

use prost::Message;
use rustflow::data::{write_framed, TFRecordReader};
use rustflow::proto::{parse_graph_def, tf};
use rustflow::summary::{self, FileWriter, Histogram, FILE_VERSION};
use rustflow::tensor::npy::read_npy;
use rustflow::{DType, Graph, Tensor};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("graphs/fixtures/summary")
        .join(name)
}

fn temp_logdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rustflow-summary-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn fixture_values() -> Vec<f64> {
    read_npy(fixture("values.npy")).unwrap().to_f64_vec()
}

/// The events of a file, each record's checksums checked.
fn events_of(path: &Path) -> Vec<tf::Event> {
    let records: Vec<Vec<u8>> = TFRecordReader::open(path)
        .unwrap()
        .collect::<rustflow::Result<_>>()
        .unwrap();
    let events = summary::read_events(path).unwrap();
    assert_eq!(records.len(), events.len());
    events
}

fn summary_of(e: &tf::Event) -> &tf::Summary {
    match &e.what {
        Some(tf::event::What::Summary(s)) => s,
        other => panic!("not a summary: {other:?}"),
    }
}

#[test]
fn histogram_and_scalar_encode_as_tensorflow_does() {
    let h = Histogram::from_values("weights", fixture_values()).unwrap();
    let ours = tf::Summary {
        value: vec![summary::value::histogram("weights", &h)],
    };
    let theirs = std::fs::read(fixture("histogram.pb")).unwrap();
    assert_eq!(
        tf::Summary::decode(&theirs[..]).unwrap(),
        ours,
        "histogram differs from TensorFlow's"
    );
    assert_eq!(ours.encode_to_vec(), theirs);

    let scalar = tf::Summary {
        value: vec![summary::value::scalar("loss", 0.25)],
    };
    assert_eq!(
        scalar.encode_to_vec(),
        std::fs::read(fixture("scalar.pb")).unwrap()
    );
}

#[test]
fn summary_ops_in_a_graph_give_tensorflows_bytes() {
    // The graph graphs/make_summary_fixtures.py ran in TensorFlow: scalar, histogram, merge.
    let mut g = Graph::new();
    let values = g
        .constant(read_npy(fixture("values.npy")).unwrap())
        .unwrap();
    let loss = g.constant(0.25f32).unwrap();
    let h = g.histogram_summary("weights", values).unwrap();
    let s = g.scalar_summary("loss", loss).unwrap();
    let m = g.merge_summary(&[s, h]).unwrap();
    let all = g.merge_all_summaries().unwrap().unwrap();
    let out = rustflow::Session::new(&g)
        .run(&[], &[h, s, m, all], &[])
        .unwrap();
    let bytes = |t: &Tensor| t.as_strings().unwrap()[0].clone();
    assert_eq!(
        bytes(&out[0]),
        std::fs::read(fixture("histogram.pb")).unwrap()
    );
    assert_eq!(bytes(&out[1]), std::fs::read(fixture("scalar.pb")).unwrap());
    assert_eq!(bytes(&out[2]), std::fs::read(fixture("merged.pb")).unwrap());
    // merge_all takes them in creation order: histogram, then scalar.
    let all = tf::Summary::decode(bytes(&out[3]).as_slice()).unwrap();
    let tags: Vec<&str> = all.value.iter().map(|v| v.tag.as_str()).collect();
    assert_eq!(tags, ["weights", "loss"]);
    // A fetched summary goes into an event file as it is.
    let dir = temp_logdir("ops");
    let mut w = FileWriter::new(&dir).unwrap();
    w.add_summary_bytes(&bytes(&out[2]), 7).unwrap();
    w.flush().unwrap();
    let events = events_of(w.path());
    assert_eq!(events[1].step, 7);
    assert_eq!(summary_of(&events[1]).value.len(), 2);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn file_version_record_is_framed_as_tensorflow_frames_it() {
    // Event{file_version: "brain.Event:2"} in TFRecord framing, as TensorFlow writes it
    // (the example record of /work/shared/ref/tensorflow-interop.md, section 3).
    let event = tf::Event {
        what: Some(tf::event::What::FileVersion(FILE_VERSION.into())),
        ..Default::default()
    };
    let mut out = Vec::new();
    write_framed(&mut out, &event.encode_to_vec()).unwrap();
    let mut expected = vec![
        0x0f, 0, 0, 0, 0, 0, 0, 0, 0x6d, 0x53, 0x2b, 0x09, 0x1a, 0x0d,
    ];
    expected.extend_from_slice(b"brain.Event:2");
    expected.extend_from_slice(&[0xfc, 0x98, 0x51, 0x29]);
    assert_eq!(out, expected);
}

fn scoped_graph() -> Graph {
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [None, Some(4)], "x").unwrap();
    let w = g.constant(Tensor::full(&[4, 2], 0.5f32)).unwrap();
    g.name_scope("dense", |g| {
        let y = g.matmul(x, w)?;
        g.relu(y)
    })
    .unwrap();
    g
}

#[test]
fn file_writer_writes_whole_checked_records_tensorboard_reads() {
    let dir = temp_logdir("writer");
    let g = scoped_graph();
    let values = fixture_values();
    let path = {
        let mut w = FileWriter::new(&dir).unwrap();
        let path = w.path().to_path_buf();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let rest = name.strip_prefix("events.out.tfevents.").unwrap();
        let (secs, host) = rest.split_once('.').unwrap();
        assert_eq!(secs.len(), 10, "{name}");
        assert!(secs.parse::<u64>().unwrap() > 1_600_000_000, "{name}");
        assert!(!host.is_empty(), "{name}");
        // The first record is on disk at once; later ones wait for a flush.
        assert_eq!(events_of(&path).len(), 1);
        w.add_graph(&g).unwrap();
        for step in 0..3 {
            w.add_scalar("loss", 1.0 / (step + 1) as f32, step).unwrap();
        }
        w.add_histogram("weights", values.iter().copied(), 2)
            .unwrap();
        w.add_text("notes", "**hello** rustflow", 2).unwrap();
        assert_eq!(events_of(&path).len(), 1);
        w.flush().unwrap();
        assert_eq!(events_of(&path).len(), 7);
        // Ten queued events are written without a flush.
        for step in 3..13 {
            w.add_scalar("loss", 0.1, step).unwrap();
        }
        assert_eq!(events_of(&path).len(), 17);
        w.add_scalar("loss", 0.05, 13).unwrap();
        path
        // dropped: the last event is flushed
    };
    let events = events_of(&path);
    assert_eq!(events.len(), 18);
    assert_eq!(
        events[0].what,
        Some(tf::event::What::FileVersion(FILE_VERSION.into()))
    );
    assert!(events.iter().all(|e| e.wall_time > 1.6e9));

    // The graph, with its name scope and edge shapes.
    let Some(tf::event::What::GraphDef(bytes)) = &events[1].what else {
        panic!("no graph_def: {:?}", events[1]);
    };
    let def = parse_graph_def(bytes).unwrap();
    let names: Vec<&str> = def.node.iter().map(|n| n.name.as_str()).collect();
    assert!(
        names.contains(&"dense/MatMul") && names.contains(&"dense/Relu"),
        "{names:?}"
    );
    let x = def.node.iter().find(|n| n.name == "x").unwrap();
    let Some(tf::attr_value::Value::List(shapes)) = &x.attr["_output_shapes"].value else {
        panic!("no _output_shapes on x");
    };
    let dims: Vec<i64> = shapes.shape[0].dim.iter().map(|d| d.size).collect();
    assert_eq!(dims, [-1, 4]);

    // Scalars, histogram, text.
    let v = &summary_of(&events[3]).value[0];
    assert_eq!((events[3].step, v.tag.as_str()), (1, "loss"));
    assert_eq!(v.value, Some(tf::summary::value::Value::SimpleValue(0.5)));
    let h = &summary_of(&events[5]).value[0];
    let theirs = tf::Summary::decode(&std::fs::read(fixture("histogram.pb")).unwrap()[..]).unwrap();
    assert_eq!(h, &theirs.value[0]);
    let t = &summary_of(&events[6]).value[0];
    let Some(tf::summary::value::Value::Tensor(tp)) = &t.value else {
        panic!("text is not a tensor: {t:?}");
    };
    assert_eq!(tp.string_val, vec![b"**hello** rustflow".to_vec()]);
    assert_eq!(
        t.metadata
            .as_ref()
            .unwrap()
            .plugin_data
            .as_ref()
            .unwrap()
            .plugin_name,
        "text"
    );
    assert_eq!(events[17].step, 13);

    // A second writer in the same directory (same second) gets its own file.
    let w2 = FileWriter::new(&dir).unwrap();
    assert_ne!(w2.path(), path);
    drop(w2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_an_error_naming_the_file() {
    let dir = temp_logdir("bad");
    let mut w = FileWriter::new(&dir).unwrap();
    let err = w.add_histogram("w", [1.0, f64::NAN], 0).unwrap_err();
    assert!(
        err.to_string().contains("Nan in summary histogram for: w"),
        "{err}"
    );
    assert!(w.add_summary_bytes(b"\xff\xff", 0).is_err());
    w.flush().unwrap();
    let path = w.path().to_path_buf();
    drop(w);

    // A torn tail or a flipped bit is reported with the file's name.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 3);
    let torn = dir.join("events.out.tfevents.torn");
    std::fs::write(&torn, &bytes).unwrap();
    let err = summary::read_events(&torn).unwrap_err().to_string();
    assert!(
        err.contains("events.out.tfevents.torn") && err.contains("corrupt TFRecord"),
        "{err}"
    );
    let missing = summary::read_events(&dir.join("nope"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("nope"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}
