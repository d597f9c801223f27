//! Input pipeline speed:
//! - `data/digits_shuffle_batch_prefetch`: one pass of
//!   `from_tensor_slices((x, y)).shuffle(1000).batch(32).prefetch(2)` over the digits
//!   training arrays (1437 rows of 64 float32 pixels and an int32 label); compare with
//!   `benches/data_vs_tfdata.py`, the same pipeline in `tf.data`;
//! - `data/tfrecord_examples`: reading a 100 MB TFRecord file of `tf.train.Example`
//!   records, each with three float features of 100 values, parsed into three float32
//!   tensors per record, against `data/fs_read_crc`: `std::fs::read` of the same file and
//!   a check of every record's two crcs.

#[path = "../examples/common/mod.rs"]
mod common;

use common::{data_dir, Digits};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rustflow::data::{Dataset, ExampleBuilder, ExampleParser, FeatureSpec, TFRecordWriter};
use rustflow::saved_model::{crc32c, mask_crc};
use rustflow::DType;
use std::path::Path;

const FEATURE_LEN: usize = 100;
const FILE_BYTES: u64 = 100 << 20;

fn digits_pipeline(c: &mut Criterion) {
    let data = Digits::load(&data_dir()).unwrap();
    let ds = Dataset::from_tensor_slices(data.train_tensors())
        .unwrap()
        .shuffle(1000, Some(0), true)
        .batch(32, false)
        .prefetch(2);
    let mut group = c.benchmark_group("data");
    group.throughput(Throughput::Elements(data.train_len() as u64));
    group.bench_function("digits_shuffle_batch_prefetch", |b| {
        b.iter(|| {
            let mut rows = 0;
            for batch in &ds {
                rows += batch.unwrap().pair().unwrap().1.len();
            }
            assert_eq!(rows, 1437);
        })
    });
    group.finish();
}

/// Writes Examples of three float features until the file holds at least 100 MB.
fn write_examples(path: &Path) {
    let mut w = TFRecordWriter::create(path).unwrap();
    let mut written = 0u64;
    let mut i = 0u32;
    while written < FILE_BYTES {
        let v: Vec<f32> = (0..FEATURE_LEN)
            .map(|k| (i as f32) + k as f32 * 0.5)
            .collect();
        let record = ExampleBuilder::new()
            .float("a", &v)
            .float("b", &v)
            .float("c", &v)
            .to_bytes();
        w.write(&record).unwrap();
        written += record.len() as u64 + 16;
        i += 1;
    }
    w.close().unwrap();
}

/// Checks both crcs of every record of a TFRecord file held in memory; returns the count.
fn check_crcs(bytes: &[u8]) -> usize {
    let (mut at, mut n) = (0, 0);
    let word = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap());
    while at < bytes.len() {
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        assert_eq!(
            mask_crc(crc32c(&bytes[at..at + 8])),
            word(&bytes[at + 8..at + 12])
        );
        let data = &bytes[at + 12..at + 12 + len];
        assert_eq!(
            mask_crc(crc32c(data)),
            word(&bytes[at + 12 + len..at + 16 + len])
        );
        at += 16 + len;
        n += 1;
    }
    n
}

fn tfrecord_read(c: &mut Criterion) {
    let path = std::env::temp_dir().join(format!("rustflow-bench-{}.tfrecord", std::process::id()));
    write_examples(&path);
    let size = std::fs::metadata(&path).unwrap().len();
    let records = check_crcs(&std::fs::read(&path).unwrap());
    let spec = FeatureSpec::fixed_len(DType::Float32, &[FEATURE_LEN]);
    let parser = ExampleParser::new()
        .feature("a", spec.clone())
        .feature("b", spec.clone())
        .feature("c", spec);
    let ds = Dataset::from_tfrecord(&[&path]).map(move |r| parser.parse_element(&r));
    let mut group = c.benchmark_group("data");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(size));
    group.bench_function("fs_read_crc", |b| {
        b.iter(|| assert_eq!(check_crcs(&std::fs::read(&path).unwrap()), records))
    });
    group.bench_function("tfrecord_examples", |b| {
        b.iter(|| {
            let mut n = 0;
            for e in &ds {
                let e = e.unwrap();
                assert_eq!(e.get("c").unwrap().tensor().unwrap().len(), FEATURE_LEN);
                n += 1;
            }
            assert_eq!(n, records);
        })
    });
    group.finish();
    std::fs::remove_file(&path).unwrap();
}

criterion_group!(benches, digits_pipeline, tfrecord_read);
criterion_main!(benches);
